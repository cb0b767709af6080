"""The agent's tools: typed, schema-validated operations over the catalog and the candidate bus."""

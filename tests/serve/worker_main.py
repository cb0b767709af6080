"""One server process for the scale-out tests: the tiny test catalog, the fake encoder and the stand-in
model with a delay (so a turn is long enough to collide with), serving from a shared session store.

    python -m tests.serve.worker_main DATASET_FOLDER PROFILES_FOLDER PORT STORE_URL DELAY_S
"""

from __future__ import annotations

import sys
from pathlib import Path

from recai.agent import Agent, AgentSettings
from recai.agent.memory import ProfileStore
from recai.data import Dataset
from recai.serve.logs import configure_logging
from recai.serve.server import run
from recai.serve.settings import ServeSettings
from recai.serve.stand_in import stand_in_model
from recai.testing.fakes import BagOfWordsEncoder


def main() -> None:
    data, profiles, port, store, delay = sys.argv[1:6]
    configure_logging("warning")
    agent = Agent(
        Dataset.load(data),
        stand_in_model(delay_s=float(delay)),
        # item-CF ranks by preference: no torch to import, so a worker starts in a few seconds
        settings=AgentSettings(k=3, retrieve_k=5, preference_model="itemcf"),
        encoder=BagOfWordsEncoder(),
        profile_store=ProfileStore(Path(profiles)),
        progress=False,
    )
    agent.warm_up()
    settings = ServeSettings(store=store, rate_per_minute=0, turn_timeout_s=30, store_timeout_s=1.0)
    run(agent, settings, host="127.0.0.1", port=int(port))


if __name__ == "__main__":
    main()

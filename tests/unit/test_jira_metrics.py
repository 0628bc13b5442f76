"""The Jira client's counters (jiraapi/metrics.py) never fail a call."""

import subprocess
import sys

CLIENT_WITHOUT_ITS_METRICS_FOLDER = """
from jiraapi.client import JiraClient, JiraSite

client = JiraClient(JiraSite(base_url="https://x.example", flavor="cloud", user="u", token="t"))
client._calls.inc()
print("made")
"""


def test_a_missing_metrics_folder_counts_nothing_and_fails_nothing(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "gone"), "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_WITHOUT_ITS_METRICS_FOLDER],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "made" in done.stdout

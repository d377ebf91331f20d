"""embench's on-device agent: times one inference job and prints one Result JSON.

Runs on the device (a Linux board, or the host itself) with the standard library plus the runtime it
times, on Python ≥ 3.8; never imports embench. The host bundles this package into one zipapp
(embench/agents/bundle.py) and runs it as `python3 embench_agent.pyz run -`. The host may import
this package (protocol, registries); this package never imports the host.
"""

AGENT_VERSION = "2"

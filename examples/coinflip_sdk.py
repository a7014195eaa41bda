"""examples/coinflip.yaml (Argo's coinflip, no protocol line) with the Python SDK."""

from __future__ import annotations

from shoal.sdk import Workflow

FLIP = """\
import random, sys
seed = sys.argv[1]
random.seed(int(seed) if seed else None)
print("heads" if random.randint(0, 1) == 0 else "tails")
"""

workflow = Workflow("coinflip", image="python:3.12-alpine", parameters={"seed": ""})
coin = workflow.command(
    "flip-coin", ["python3", "-c", FLIP, workflow.params["seed"]], capture_stdout=True
)
for side in ("heads", "tails"):
    workflow.command(
        side,
        ["echo", f"it was {side}"],
        when=f"nodes.flip_coin.outputs.result == '{side}'",
        capture_stdout=True,
    ).after(coin)

if __name__ == "__main__":
    workflow.main()

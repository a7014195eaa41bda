"""examples/shell.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from shoal.sdk import Workflow

COUNT = """\
m="@shoal/2:$SHOAL_PROTOCOL_TOKEN"
echo "plain lines are logs"
echo "$m"' {"type":"progress","percent":50,"message":"half way"}'
echo "$m"' {"type":"output","key":"words","value":["alpha","beta","gamma"]}'
echo "$m"' {"type":"output","key":"total","value":3}'
"""
SHOUT = (
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN '
    '{\\"type\\":\\"output\\",\\"key\\":\\"upper\\",'
    '\\"value\\":\\"$(echo "$1" | tr a-z A-Z)\\"}"'
)

workflow = Workflow("shell", image="busybox:1.36")
count = workflow.command("count", ["sh", "-c", COUNT])
workflow.command(
    "shout",
    ["sh", "-c", SHOUT, "shout"],
    args=["${{ item }}"],
    for_each=count.outputs["words"],
)

if __name__ == "__main__":
    workflow.main()

"""The agent layer: tools, the react loop, limits and handoffs.

    from harness.agent import AgentLimits, bash, python, react
    solver = react(tools=[bash(), python()], prompt="...", limits=AgentLimits(turns=20))

`@tool` makes a tool from a function's signature and docstring; inside a tool, `sandbox()` is the
sample's own sandbox (one per sample for its whole trajectory). Every step is an event of the sample
(harness._events), stored in the `events` table.
"""
from harness.agent._react import CONTINUE, TOOL_OUTPUT_BYTES, Agent, AgentLimits, handoff, react
from harness.agent._tool import FunctionTool, Tool, ToolFailure, ToolResult, function_tool, sandbox, tool
from harness.agent._tools import SUBMIT, bash, python, submit, text_editor

__all__ = ["Agent", "AgentLimits", "CONTINUE", "FunctionTool", "SUBMIT", "TOOL_OUTPUT_BYTES", "Tool", "ToolFailure",
           "ToolResult", "bash", "function_tool", "handoff", "python", "react", "sandbox", "submit", "text_editor",
           "tool"]

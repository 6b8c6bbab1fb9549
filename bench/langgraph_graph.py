"""A real LangGraph graph for the checkpointer's tests and bench: no model, no network.

``StateGraph(MessagesState)`` with a stub model node and a tool node: a turn
that asks for the weather goes model -> tool -> model (a human, an AI tool
call, a tool result and an AI answer); any other turn is a human message and
an AI echo. Message ids are fixed by the turn number, so two runs of the same
turns (on two checkpointers) hold equal states.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition


def get_weather(city: str) -> str:
    """The weather in a city (always the same)."""
    return f"sunny in {city}"


def stub_model(state: MessagesState) -> dict[str, list[AnyMessage]]:
    """Answer the last message: call the tool for the weather, else echo."""
    last = state["messages"][-1]
    asked = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
    turn = str(asked.id)
    if isinstance(last, ToolMessage):
        reply = AIMessage(f"The weather: {last.content}", id=f"answer-{turn}")
    elif isinstance(last.content, str) and "weather" in last.content:
        call = {"name": "get_weather", "args": {"city": "Paris"}, "id": f"tool-call-{turn}"}
        reply = AIMessage("", tool_calls=[call], id=f"call-{turn}")
    else:
        reply = AIMessage(f"echo: {last.content}", id=f"echo-{turn}")
    return {"messages": [reply]}


def build_graph(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The model and tool graph over ``checkpointer``."""
    graph = StateGraph(MessagesState)
    graph.add_node("model", stub_model)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=checkpointer)


def human(turn: int, text: str | None = None) -> HumanMessage:
    """Turn ``turn``'s human message, with a fixed id."""
    return HumanMessage(text or f"message {turn}", id=f"h{turn}")


def config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


async def run_turns(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    thread_id: str,
    turns: range,
    *,
    weather_every: int = 0,
) -> None:
    """Run ``turns`` on the thread; every ``weather_every``-th asks for the weather."""
    for turn in turns:
        text = "what is the weather?" if weather_every and turn % weather_every == 0 else None
        await graph.ainvoke({"messages": [human(turn, text)]}, config(thread_id))

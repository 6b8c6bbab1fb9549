"""Bridges that make agentcore the history store of agent frameworks.

One module per framework, each imported on its own (``from
agentcore.integrations.openai_agents import AgentcoreSession``) so that a
framework is needed only where its bridge is used. The bridges use agentcore's
public API only, and nothing in agentcore imports them.
"""

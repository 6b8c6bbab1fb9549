"""The entry point applications call: agents and workflows by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentcore.agent import Agent
from agentcore.errors import InvalidInputError, UnknownAgentError
from agentcore.model_client import ModelClient
from agentcore.models import AgentConfig, AgentResult, Message
from agentcore.repository import TurnStore
from agentcore.workflows import CustomWorkflowExecutor


class ExecutionFacade:
    """Runs configured agents and custom workflows, carrying the session id down.

    The facade is the composition root's product: it receives the model
    client, the history repository and the workflow classes, and builds one
    :class:`~agentcore.agent.Agent` per configuration.

    Args:
        agents: The agents' configurations; names must be unique.
        model: The model client every agent uses.
        history: Where conversations are kept: any :class:`~agentcore.TurnStore`
            (e.g. a ``PostgresHistoryRepository`` over your pool, or an
            ``InMemoryHistoryRepository`` in tests).
        workflows: Custom workflow classes by name (see
            :func:`~agentcore.workflows.load_workflows`).

    Raises:
        InvalidInputError: two agents share a name, or an item is not an ``AgentConfig``.
        InvalidIdentifierError: an agent or workflow name is not usable.
        InvalidWorkflowError: a workflow class does not have the required signature.
    """

    def __init__(
        self,
        agents: Iterable[AgentConfig],
        model: ModelClient,
        history: TurnStore | None = None,
        workflows: Mapping[str, type] | None = None,
    ) -> None:
        if isinstance(agents, AgentConfig | str | bytes) or not isinstance(agents, Iterable):
            raise InvalidInputError(
                f"agents must be a list of AgentConfig objects, got {type(agents).__name__}"
            )
        self._agents: dict[str, Agent] = {}
        for config in agents:
            if not isinstance(config, AgentConfig):
                raise InvalidInputError(
                    f"agents must be AgentConfig objects, got {type(config).__name__}"
                )
            if config.name in self._agents:
                raise InvalidInputError(f"two agents are named {config.name!r}")
            self._agents[config.name] = Agent(config, model, history)
        self._workflows = CustomWorkflowExecutor(workflows)

    @property
    def agent_names(self) -> list[str]:
        """The configured agents' names, sorted."""
        return sorted(self._agents)

    @property
    def workflow_names(self) -> list[str]:
        """The registered workflows' names, sorted."""
        return self._workflows.names

    async def run_agent(
        self, agent_name: str, input: str | Message, session_id: str | None = None
    ) -> AgentResult:
        """Run one turn of an agent in a session.

        Args:
            agent_name: A configured agent's name.
            input: The user's text, or a user/tool :class:`Message`.
            session_id: The conversation; ``None`` runs without history (warned).

        Returns:
            The turn's result.

        Raises:
            UnknownAgentError: no agent has that name (lists the known ones).
            InvalidInputError: ``agent_name`` is not a string.
            AgentcoreError: as :meth:`Agent.execute_agent`.
        """
        return await self._agent(agent_name).execute_agent(input, session_id=session_id)

    async def run_custom_workflow(
        self, workflow_name: str, initial_input: Any, session_id: str | None = None
    ) -> Any:
        """Run a registered custom workflow in a session.

        The workflow receives this facade as ``executor`` and ``session_id``,
        which it passes on to ``executor.run_agent``.

        Args:
            workflow_name: A registered workflow's name.
            initial_input: Passed to the workflow unchanged.
            session_id: The conversation the workflow's agent turns belong to.

        Returns:
            Whatever the workflow returns.

        Raises:
            UnknownWorkflowError: no workflow has that name (lists the known ones).
            WorkflowError: the workflow raised (the original is the ``__cause__``).
        """
        return await self._workflows.execute(
            workflow_name, initial_input, self, session_id=session_id
        )

    async def run_simple_workflow(
        self, agent_names: Sequence[str], initial_input: str | Message
    ) -> AgentResult:
        """Run agents one after another, each one's output the next one's input.

        This chain has no session: its turns are neither loaded nor stored (an
        agent with ``include_history`` logs a warning). Use a custom workflow
        to chain agents within a session.

        Args:
            agent_names: The agents to run, in order (at least one).
            initial_input: The first agent's input.

        Returns:
            The last agent's result.

        Raises:
            InvalidInputError: ``agent_names`` is empty or a string.
            UnknownAgentError: a name is unknown (checked before anything runs).
        """
        if (
            isinstance(agent_names, str | bytes)
            or not isinstance(agent_names, Sequence)
            or not agent_names
        ):
            raise InvalidInputError("agent_names must be a non-empty sequence of agent names")
        first, *rest = [self._agent(name) for name in agent_names]
        result = await first.execute_agent(initial_input, session_id=None)
        for agent in rest:
            result = await agent.execute_agent(result.output, session_id=None)
        return result

    def _agent(self, name: str) -> Agent:
        if not isinstance(name, str):
            raise InvalidInputError(f"agent_name must be a string, got {type(name).__name__}")
        agent = self._agents.get(name)
        if agent is None:
            raise UnknownAgentError(name, list(self._agents))
        return agent

"""A workflow definition: the stages, gates, deadlines and reminders a programme's file declares.

Read from YAML with every problem located (``load_workflow_file``, ``validate_files``), kept in the
database by version so a school never changes rules under its feet (``register_workflow``,
``workflow_for_version``), run as a shared state machine, drawn as a Mermaid diagram.
"""

from engine.workflow.diagram import mermaid
from engine.workflow.loader import (
    content_hash,
    load_workflow_file,
    load_workflow_text,
    read_source,
    validate_files,
)
from engine.workflow.machine import Token, machine_for
from engine.workflow.model import (
    PREVIOUS,
    Condition,
    DueRule,
    EscalationStep,
    Gate,
    Metric,
    Rate,
    ReminderRule,
    SchoolCondition,
    Stage,
    Text,
    Transition,
    Workflow,
)
from engine.workflow.versions import (
    WORKFLOWS_DIR,
    find_workflow,
    register_workflow,
    shipped_workflow_paths,
    workflow_for_version,
)

__all__ = [
    "PREVIOUS", "Condition", "DueRule", "EscalationStep", "Gate", "Metric", "Rate", "ReminderRule", "SchoolCondition", "Stage", "Text",
    "Transition", "Workflow",
    "content_hash", "load_workflow_file", "load_workflow_text", "read_source", "validate_files",
    "WORKFLOWS_DIR", "find_workflow", "register_workflow", "shipped_workflow_paths", "workflow_for_version",
    "Token", "machine_for", "mermaid",
]

"""Bulk export (kept for compatibility): the export now lives in :mod:`vpsbg_support.archive`.

``from vpsbg_support.export import export_tickets`` keeps working; new code imports from
``vpsbg_support.archive``.
"""

from vpsbg_support.archive import (
    ATTACHMENTS_DIR,
    MANIFEST_FILE,
    TICKETS_FILE,
    ExportFailure,
    ExportProgress,
    ExportSummary,
    ProgressCallback,
    attachment_path,
    export_tickets,
)

__all__ = [
    "ATTACHMENTS_DIR",
    "MANIFEST_FILE",
    "TICKETS_FILE",
    "ExportFailure",
    "ExportProgress",
    "ExportSummary",
    "ProgressCallback",
    "attachment_path",
    "export_tickets",
]

"""Print the PBX file's JSON Schema:
python -m mtctl.formats.pbx_file > schemas/mtctl-config.schema.json
"""

from __future__ import annotations

import sys

from mtctl.formats.pbx_file.schema import schema_text

sys.stdout.write(schema_text())

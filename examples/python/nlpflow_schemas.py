"""nlpflow's Protobuf messages for Python clients, compiled from schemas/*.proto.

`load()` runs protoc (Debian package protobuf-compiler) on the repository's
schemas into a temporary folder once per process and imports the generated
modules, so the classes always match the .proto files they were made from:

    pb = nlpflow_schemas.load()
    record = pb.input_record.InputRecord(text="hello", id="1")
"""

import importlib
import os
import subprocess
import sys
import tempfile
import types

SCHEMAS = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "schemas"))
_loaded = None


def load(schemas_dir=SCHEMAS):
    """Modules input_record, result and dead_letter (their *_pb2), as attributes."""
    global _loaded
    if _loaded is not None:
        return _loaded
    out = tempfile.mkdtemp(prefix="nlpflow-pb-")
    protos = ["input_record.proto", "result.proto", "dead_letter.proto"]
    subprocess.run(["protoc", f"-I{schemas_dir}", f"--python_out={out}"] + protos, check=True,
                   cwd=schemas_dir)
    sys.path.insert(0, out)
    _loaded = types.SimpleNamespace(
        input_record=importlib.import_module("input_record_pb2"),
        result=importlib.import_module("result_pb2"),
        dead_letter=importlib.import_module("dead_letter_pb2"),
    )
    return _loaded

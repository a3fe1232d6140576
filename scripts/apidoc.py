"""Render docs/api.md from the .proto files and `sidecar.errors` (`--check`: exit 1 when stale).

Services, RPCs, messages, fields and enum values come from the descriptors protoc builds (with
their comments: `--include_source_info`); the error table from the SidecarError classes (their
gRPC code, ErrorInfo reason and docstring) and the typed client's reason → exception map. Only
the introduction is written here.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
# This checkout's code, not whichever copy the environment has installed.
sys.path[:0] = [str(ROOT), str(ROOT / "clients" / "python")]
PROTO = ROOT / "proto"
DOC = ROOT / "docs" / "api.md"

# FileDescriptorProto / DescriptorProto field numbers: the path of a SourceCodeInfo location.
MESSAGE, ENUM, SERVICE = 4, 5, 6
FIELD, NESTED, NESTED_ENUM = 2, 3, 4
VALUE = METHOD = 2

INTRO = """# gRPC API

Generated from `proto/` and `sidecar/errors.py` by `python scripts/apidoc.py`; a test keeps it
current. The comments of the `.proto` files and the docstrings of the error classes are the text.

The sidecar serves package `oanda.sidecar.v1` on `server.grpc_listen` (default
`127.0.0.1:50051`, plaintext, pod-local): `ProxyService` for trading code, `ControlService` for
operators, plus `grpc.health.v1.Health` and server reflection, so `grpcurl -plaintext HOST:PORT
list` and `describe` work. Trading code in Python uses the typed client
([clients/python/README.md](../clients/python/README.md)); any gRPC client works with the files
under `proto/oanda/sidecar/v1/`.

- **OANDA's answers are answers.** `Execute` returns OANDA's status, body and headers, 4xx and
  5xx included; the paths, query parameters and bodies are OANDA's v20 REST API
  ([developer.oanda.com/rest-live-v20](https://developer.oanda.com/rest-live-v20/introduction/);
  OANDA publishes its OpenAPI definitions of that API on GitHub:
  [oanda/v20-openapi](https://github.com/oanda/v20-openapi)). The sidecar adds the OANDA token;
  a caller's `Authorization` header is refused, never forwarded.
- **The sidecar's own decisions are gRPC errors** with a `google.rpc.Status` in the trailer
  `grpc-status-details-bin`: an `ErrorInfo` (`domain: "oanda-sidecar"`, `reason` from the table
  at the end, `metadata` such as `field` or `attempts`) and, where waiting helps, a `RetryInfo`.
  Branch on the reason, not on the message.
- **Set a deadline.** The gRPC deadline bounds every wait, attempt and backoff of a call.
- **Control RPCs** need metadata `authorization: Bearer <token>` when `server.control_token_file`
  is set; Execute never does. `oanda-sidecar ctl` speaks them for people.

See [operations.md](operations.md) for the admin HTTP, metrics and alerts, and
[architecture.md](architecture.md) for what happens to a call inside the sidecar.
"""

SCALARS = {
    getattr(descriptor_pb2.FieldDescriptorProto, name): name[len("TYPE_"):].lower()
    for name in descriptor_pb2.FieldDescriptorProto.Type.keys()
}
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
_MESSAGE_TYPE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_ENUM_TYPE = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM


def descriptors(proto_root: Path = PROTO) -> list[descriptor_pb2.FileDescriptorProto]:
    """Our .proto files, parsed by protoc with their comments, imported files first."""
    import grpc_tools  # type: ignore[import-untyped]
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{proto_root}", f"-I{include}", "--include_source_info",
                "--include_imports", f"--descriptor_set_out={out}", *protos]
        if protoc.main(args) != 0:
            raise SystemExit("apidoc: protoc failed")
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    ours = set(protos)
    return [f for f in fds.file if f.name in ours]


def comment(text: str) -> str:
    """A proto comment as one table-safe paragraph (lint directives dropped)."""
    paragraphs: list[list[str]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("buf:lint:"):
            continue
        if not line:
            paragraphs.append([])
        else:
            paragraphs[-1].append(line)
    return cell("<br>".join(" ".join(p) for p in paragraphs if p))


def cell(text: str) -> str:
    return text.replace("|", "\\|").strip()


class Comments:
    """Leading comments of one file, by the SourceCodeInfo path of the element."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self._by_path = {tuple(loc.path): loc.leading_comments
                         for loc in file.source_code_info.location}

    def __call__(self, *path: int) -> str:
        return comment(self._by_path.get(path, ""))


def _link(type_name: str, package: str) -> str:
    name = type_name.lstrip(".")
    if name.startswith(package + "."):
        local = name[len(package) + 1:]
        return f"[{local}](#{local.lower().replace('.', '')})"
    return f"`{name}`"


def field_type(field: descriptor_pb2.FieldDescriptorProto, package: str,
               maps: dict[str, tuple[str, str]]) -> str:
    if field.type_name.lstrip(".") in maps:
        key, value = maps[field.type_name.lstrip(".")]
        return f"map<{key}, {value}>"
    if field.type in (_MESSAGE_TYPE, _ENUM_TYPE):
        text = _link(field.type_name, package)
    else:
        text = SCALARS[field.type]
    if field.label == _REPEATED:
        return f"repeated {text}"
    if field.proto3_optional:
        return f"optional {text}"
    return text


def _map_entries(file: descriptor_pb2.FileDescriptorProto) -> dict[str, tuple[str, str]]:
    """Full name of every map entry message → (key type, value type)."""
    out: dict[str, tuple[str, str]] = {}

    def walk(messages: list[descriptor_pb2.DescriptorProto], prefix: str) -> None:
        for m in messages:
            name = f"{prefix}.{m.name}"
            if m.options.map_entry:
                key, value = m.field
                out[name] = (SCALARS[key.type],
                             _link(value.type_name, file.package) if value.type_name
                             else SCALARS[value.type])
            walk(list(m.nested_type), name)

    walk(list(file.message_type), file.package)
    return out


def render_services(file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    docs = Comments(file)
    for i, service in enumerate(file.service):
        yield f"### `{service.name}`\n\n{docs(SERVICE, i)}\n\n"
        yield "| rpc | request | response | meaning |\n|---|---|---|---|\n"
        for j, rpc in enumerate(service.method):
            request = _link(rpc.input_type, file.package)
            response = _link(rpc.output_type, file.package)
            if rpc.client_streaming:
                request = f"stream {request}"
            if rpc.server_streaming:
                response = f"stream {response}"
            full = f"/{file.package}.{service.name}/{rpc.name}"
            yield f"| `{rpc.name}`<br>`{full}` | {request} | {response} | " \
                  f"{docs(SERVICE, i, METHOD, j)} |\n"
        yield "\n"


def _messages(messages: list[descriptor_pb2.DescriptorProto], path: tuple[int, ...],
              prefix: str) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto,
                                            tuple[int, ...]]]:
    for i, message in enumerate(messages):
        if message.options.map_entry:
            continue
        name = f"{prefix}{message.name}"
        yield name, message, (*path, i)
        yield from _messages(list(message.nested_type), (*path, i, NESTED), f"{name}.")


def render_messages(file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    docs, maps = Comments(file), _map_entries(file)
    for name, message, path in _messages(list(file.message_type), (MESSAGE,), ""):
        yield f"### `{name}`\n\n{docs(*path) or '(no comment)'}\n\n"
        if not message.field:
            yield "No fields.\n\n"
            continue
        yield "| field | number | type | meaning |\n|---|---|---|---|\n"
        for j, field in enumerate(message.field):
            kind = field_type(field, file.package, maps)
            if field.HasField("oneof_index") and not field.proto3_optional:
                kind += f" (oneof `{message.oneof_decl[field.oneof_index].name}`)"
            yield f"| `{field.name}` | {field.number} | {kind} | {docs(*path, FIELD, j)} |\n"
        yield "\n"


def _enums(file: descriptor_pb2.FileDescriptorProto) -> Iterator[
        tuple[str, descriptor_pb2.EnumDescriptorProto, tuple[int, ...]]]:
    for i, enum in enumerate(file.enum_type):
        yield enum.name, enum, (ENUM, i)
    for name, message, path in _messages(list(file.message_type), (MESSAGE,), ""):
        for k, enum in enumerate(message.enum_type):
            yield f"{name}.{enum.name}", enum, (*path, NESTED_ENUM, k)


def render_enums(file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    docs = Comments(file)
    for name, enum, path in _enums(file):
        yield f"### `{name}`\n\n{docs(*path) or '(no comment)'}\n\n"
        yield "| value | number | meaning |\n|---|---|---|\n"
        for j, value in enumerate(enum.value):
            yield f"| `{value.name}` | {value.number} | {docs(*path, VALUE, j)} |\n"
        yield "\n"


def _docstring(cls: type) -> str:
    text = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    return "<br>".join(cell(" ".join(p.split())) for p in text.split("\n\n") if p.strip())


def error_rows() -> Iterator[str]:
    """One row per ErrorInfo reason, in the order errors.py defines them."""
    from oanda_sidecar_client import errors as client_errors

    from sidecar import errors

    by_reason: dict[str, type[errors.SidecarError]] = getattr(client_errors, "_BY_REASON", {})
    classes = [c for c in vars(errors).values() if isinstance(c, type)
               and issubclass(c, errors.SidecarError) and c.__module__ == errors.__name__]
    for cls in classes:
        if "reason" not in cls.__dict__:
            continue
        text = _docstring(cls)
        if not text:
            raise SystemExit(f"apidoc: sidecar.errors.{cls.__name__} has no docstring: write "
                             "when it happens and what a caller should do")
        cases = [f"*{sub.__name__}*: {_docstring(sub).split('<br>')[0].rstrip('.')}"
                 for sub in classes
                 if sub is not cls and issubclass(sub, cls) and sub.reason == cls.reason
                 and _docstring(sub)]
        if cases:
            text += "<br>Cases: " + "; ".join(cases) + "."
        client = by_reason.get(cls.reason)
        client_name = f"`{client.__name__}`" if client is not None else "`SidecarError`"
        yield (f"| `{cls.reason}` | `{cls.code.name}` ({cls.code.value[0]}) | "
               f"{cls.http_status} | {client_name} | {text} |\n")


ERRORS_HEADER = """## Errors

Every error below reaches the caller as its gRPC status code with an `ErrorInfo` whose `domain`
is `oanda-sidecar` and whose `reason` is the first column; the Python client raises the class of
the fourth column (all subclasses of `oanda_sidecar_client.SidecarError`, with `.reason`,
`.retry_after` and `.metadata`). An error from elsewhere (the gRPC library's own deadline, a
proxy) has no `ErrorInfo`. The REST listener answers the same decision with the HTTP status of
the third column and an OANDA-shaped body, `{"errorCode": reason, "errorMessage": ...}`
([rest.md](rest.md)).

| reason | gRPC code | HTTP (REST listener) | Python client | when, and what a caller should do |
|---|---|---|---|---|
"""


def render(proto_root: Path = PROTO) -> str:
    files = descriptors(proto_root)
    parts = [INTRO, "\n## Services\n\n"]
    for file in files:
        parts += render_services(file)
    parts.append("## Messages\n\n")
    for file in files:
        parts += render_messages(file)
    parts.append("## Enums\n\n")
    for file in files:
        parts += render_enums(file)
    parts.append(ERRORS_HEADER)
    parts += error_rows()
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is stale")
    ns = parser.parse_args()
    text = render()
    if ns.check:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/api.md is stale: run python scripts/apidoc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

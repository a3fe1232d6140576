"""The project documents itself: generated pages are current, links lead somewhere real.

Each generated page is rendered again from the code and compared with the committed file (like
`scripts/configdoc.py --check`); the generators are also run on a small proto tree and source
tree of their own, so that what other engineers add (streams, nested messages, oneofs, a
subscription table) renders too.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATORS = ("apidoc", "opsdoc", "archdoc", "configdoc")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("generator", GENERATORS)
def test_generated_page_is_current(generator: str) -> None:
    result = subprocess.run([sys.executable, f"scripts/{generator}.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _prose(text: str) -> str:
    """The page without code blocks and inline code: a path in code is not a link."""
    return _CODE.sub("", _FENCE.sub("", text))


def _links(page: Path) -> list[str]:
    prose = _prose(page.read_text())
    return _LINK.findall(prose) + _REFERENCE.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", _FENCE.sub("", page.read_text()), re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_of_the_repository(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I):  # https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if "shared" in Path(path).parts or not target.is_relative_to(ROOT):
            broken.append(f"{link}: outside the repository")
        elif not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_sends_users_to_the_shared_folder(page: Path) -> None:
    text = page.read_text()
    assert "../shared" not in text and "shared folder" not in text.lower()


def test_api_page_says_where_oandas_spec_comes_from() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    assert "https://github.com/oanda/v20-openapi" in text


def test_slug_follows_github() -> None:
    assert slug("### `ExecuteRequest`".lstrip("# ")) == "executerequest"
    assert slug("Alerts: what each means and what to do") == \
        "alerts-what-each-means-and-what-to-do"
    assert slug("Admin HTTP") == "admin-http"


PROTO = """\
syntax = "proto3";

package oanda.sidecar.v1;

import "google/protobuf/timestamp.proto";

// Feed streams things.
service FeedService {
  // Watch streams ticks.
  // buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
  rpc Watch(WatchRequest) returns (stream Tick);
}

// WatchRequest asks for ticks.
message WatchRequest {
  // The instruments.
  repeated string instruments = 1;
  // Labels by name.
  map<string, Tick> latest = 2;
  oneof start {
    // From this ID.
    string since_id = 3;
    google.protobuf.Timestamp since_time = 4;
  }
  optional int32 limit = 5;
}

// Tick is one price.
message Tick {
  // Kind of tick.
  enum Kind {
    KIND_UNSPECIFIED = 0;
    // A price | with a pipe.
    KIND_PRICE = 1;
  }
  // Nested detail.
  message Detail {
    string note = 1;
  }
  Kind kind = 1;
  Detail detail = 2;
}
"""


def test_api_generator_renders_streams_maps_oneofs_and_nested_types(tmp_path: Path) -> None:
    proto = tmp_path / "oanda" / "sidecar" / "v1"
    proto.mkdir(parents=True)
    (proto / "feed.proto").write_text(PROTO)
    apidoc = _script("apidoc")
    text = "".join(part for file in apidoc.descriptors(tmp_path)
                   for render in (apidoc.render_services, apidoc.render_messages,
                                  apidoc.render_enums) for part in render(file))
    assert ("| `Watch`<br>`/oanda.sidecar.v1.FeedService/Watch` | [WatchRequest](#watchrequest)"
            " | stream [Tick](#tick) | Watch streams ticks. |") in text
    assert "| `instruments` | 1 | repeated string | The instruments. |" in text
    assert "| `latest` | 2 | map<string, [Tick](#tick)> | Labels by name. |" in text
    assert "| `since_id` | 3 | string (oneof `start`) | From this ID. |" in text
    assert "| `since_time` | 4 | `google.protobuf.Timestamp` (oneof `start`) |  |" in text
    assert "| `limit` | 5 | optional int32 |  |" in text
    assert "| `kind` | 1 | [Tick.Kind](#tickkind) |  |" in text
    assert "### `Tick.Detail`" in text and "### `Tick.Kind`" in text
    assert "| `KIND_PRICE` | 1 | A price \\| with a pipe. |" in text
    assert "buf:lint" not in text and "LatestEntry" not in text


def test_every_service_rpc_message_and_enum_has_a_comment() -> None:
    apidoc = _script("apidoc")
    missing = []
    for file in apidoc.descriptors():
        docs = apidoc.Comments(file)
        for i, service in enumerate(file.service):
            missing += [service.name] if not docs(apidoc.SERVICE, i) else []
            missing += [f"{service.name}.{rpc.name}" for j, rpc in enumerate(service.method)
                        if not docs(apidoc.SERVICE, i, apidoc.METHOD, j)]
        missing += [name for name, _, path in apidoc._messages(list(file.message_type),
                                                               (apidoc.MESSAGE,), "")
                    if not docs(*path)]
        missing += [name for name, _, path in apidoc._enums(file) if not docs(*path)]
    assert not missing, f"write a comment in proto/ for: {', '.join(missing)}"


def test_error_table_has_every_reason_with_its_code_and_advice() -> None:
    from sidecar import errors

    rows = "".join(_script("apidoc").error_rows())
    reasons = {c.reason for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.SidecarError)}
    for reason in reasons:
        assert f"| `{reason}` |" in rows
    assert "| `OUTCOME_UNKNOWN` | `UNKNOWN` (2) | 504 | `OutcomeUnknown` | A write was sent" in rows
    assert "*UpstreamTimeout*: The request was sent" in rows


SOURCE = '''
from sidecar.events import AttemptFinished, BreakerTransition, ExecuteFinished


class Watcher:
    def __init__(self, bus):
        table = [(AttemptFinished, self._a), (BreakerTransition, self._b)]
        self._undo = [bus.subscribe(kind, handler) for kind, handler in table]


class Sender:
    async def send(self, bus):
        bus.publish(ExecuteFinished(at=0.0))


def helper(bus, event):
    bus.publish(event)
'''


def test_event_scan_finds_tables_constructors_and_unnamed_events(tmp_path: Path) -> None:
    (tmp_path / "sidecar").mkdir()
    (tmp_path / "sidecar" / "thing.py").write_text(textwrap.dedent(SOURCE))
    names = {"AttemptFinished", "BreakerTransition", "ExecuteFinished", "RetryScheduled"}
    found = _script("archdoc").scan(tmp_path / "sidecar", names)
    assert found[("subscribe", "AttemptFinished")] == ["`Watcher` (thing.py)"]
    assert found[("subscribe", "BreakerTransition")] == ["`Watcher` (thing.py)"]
    assert found[("publish", "ExecuteFinished")] == ["`Sender` (thing.py)"]
    assert found[("publish", "?")] == ["`helper()` (thing.py)"]
    assert ("subscribe", "RetryScheduled") not in found


def test_architecture_picture_must_follow_the_composition_root(tmp_path: Path) -> None:
    archdoc = _script("archdoc")
    page = (ROOT / "docs" / "architecture.md").read_text()
    archdoc.check_picture(page)
    swapped = page.replace("RetryPolicy ", "RetryPolicX ", 1)
    with pytest.raises(SystemExit, match="RetryPolicy"):
        archdoc.check_picture(swapped)


def test_operations_page_lists_every_metric_and_alert() -> None:
    from sidecar.alerting.conditions import CONDITIONS
    from sidecar.events import EventBus
    from sidecar.observability.metrics import Metrics

    text = (ROOT / "docs" / "operations.md").read_text()
    for family in Metrics(EventBus()).registry.collect():
        assert f"`{family.name}" in text
    for kind in CONDITIONS:
        assert f"| `{kind}" in text
    assert "| `oanda_sidecar_breaker_transitions_total` | counter | `breaker`, `from`, `to` |" \
        in text
    assert "| `upstream_auth` | critical | PagerDuty, Slack |" in text
    assert "| `GET /readyz` |" in text

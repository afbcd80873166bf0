"""The deploy files agree with the code and with each other: the Kubernetes base, the
Procfile, app.json, the Dockerfile and the README's commands.

The manifests are also checked against the Kubernetes schemas and the Dockerfile linted, by
scripts/test (kubernetes-validate, hadolint); these tests check what schemas cannot.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.routing import BaseRoute, Mount, Route

from app.intake.queue import QUEUE
from app.messages.configmap import configmap_yaml, volume_yaml
from app.ops.cli import _parser, main
from app.settings import Settings, load_settings
from app.web.main import create_app
from app.web.webhooks.workspaces import PATH as WORKSPACE_WEBHOOK
from tests.conftest import ROOT, TEMPLATES

BASE = ROOT / "deploy" / "kubernetes"
MIGRATE = BASE / "migrate"
COMPONENTS = BASE / "components"
OVERLAYS = ROOT / "deploy" / "overlays"
# Every kustomization shipped: the base, the migration, the optional components, the examples.
KUSTOMIZATIONS = [BASE, MIGRATE, *sorted(COMPONENTS.iterdir())]


def manifests(folder: Path) -> list[dict[str, Any]]:
    """The objects of a folder's manifests (not its kustomization.yaml)."""
    found = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def documents() -> list[dict[str, Any]]:
    """Every object shipped: the base's, the migration Job, the components' own."""
    return [doc for folder in KUSTOMIZATIONS for doc in manifests(folder)]


def kustomization(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return loaded


def render(folder: Path) -> list[dict[str, Any]]:
    """The objects kustomize makes of a folder, as `kubectl apply -k` would send them."""
    if tool := shutil.which("kustomize"):
        argv = [tool, "build", str(folder)]
    elif tool := shutil.which("kubectl"):
        argv = [tool, "kustomize", str(folder)]
    else:
        pytest.skip("rendering needs kubectl or kustomize (scripts/test renders with them too)")
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def kinds(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(doc["kind"], doc["metadata"]["name"]) for doc in objects}


def one(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], container)
        for doc in documents()
        if doc["kind"] in ("Deployment", "Job")
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def accepts(argv: list[str]) -> bool:
    """The keycourier command accepts these arguments (without running anything)."""
    try:
        _parser().parse_args(argv)
    except SystemExit:
        return False
    return True


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(BASE)))
def test_kustomization_lists_every_manifest(folder: Path) -> None:
    """Every manifest in the base, the migration and each component is in its
    kustomization.yaml's resources, and nothing else is."""
    on_disk = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk
    assert sorted(kustomization(folder)["resources"]) == sorted(on_disk)


def test_templates_configmap_is_the_shipped_templates(capsys: pytest.CaptureFixture[str]) -> None:
    """The committed ConfigMap is exactly what `keycourier templates configmap` prints for the
    shipped templates (tests/messages/test_configmap.py checks that it reads back as them)."""
    assert main(["templates", "configmap", "--dir", str(TEMPLATES)]) == 0
    assert capsys.readouterr().out == (BASE / "templates-configmap.yaml").read_text()
    assert configmap_yaml(TEMPLATES) == (BASE / "templates-configmap.yaml").read_text()


@pytest.mark.parametrize("deployment", ["keycourier-web", "keycourier-worker"])
def test_deployment_mounts_every_template_at_its_path(deployment: str) -> None:
    """Web (for /readyz and doctor) and workers mount the templates volume that
    `keycourier templates configmap --volume` prints, at TEMPLATES_DIR."""
    spec = one("Deployment", deployment)["spec"]["template"]["spec"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "templates"]
    assert [volume] == yaml.safe_load(volume_yaml(TEMPLATES))
    committed = one("ConfigMap", volume["configMap"]["name"])["data"]
    assert {item["key"] for item in volume["configMap"]["items"]} == set(committed)
    config = one("ConfigMap", "keycourier-config")["data"]
    [container] = spec["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "templates"]
    assert mount["mountPath"] == config["TEMPLATES_DIR"]
    assert mount["readOnly"] is True


def test_every_container_runs_a_real_command_without_inlined_secrets() -> None:
    """Each container runs an existing keycourier command as non-root, with requests, and
    gets its secrets from the Secret it references, never from the manifests."""
    assert not [d for d in documents() if d["kind"] == "Secret"]
    for name, container in containers():
        command = container["command"]
        assert command[0] == "keycourier", name
        assert accepts(command[1:]), name
        refs = {ref.get("secretRef", {}).get("name") for ref in container["envFrom"]}
        assert "keycourier-secrets" in refs, name
        assert all("valueFrom" in e or e["name"] == "PORT" for e in container.get("env", []))
        assert container["resources"]["requests"], name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for doc in documents():
        if doc["kind"] in ("Deployment", "Job"):
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_probes_and_graceful_shutdown() -> None:
    """Web is probed on /healthz and /readyz and drains before stopping; workers are probed
    by their heartbeat and given time to finish their sends; beat is one, never two."""
    web = one("Deployment", "keycourier-web")["spec"]["template"]["spec"]
    [container] = web["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert web["terminationGracePeriodSeconds"] >= 20

    worker = one("Deployment", "keycourier-worker")["spec"]["template"]["spec"]
    [container] = worker["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:2] == ["keycourier", "worker-health"]
        assert accepts(command[1:])
    assert worker["terminationGracePeriodSeconds"] >= 60

    beat = one("Deployment", "keycourier-beat")["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"]["type"] == "Recreate"


def test_scaling_and_disruption_target_the_right_workloads() -> None:
    """The HPA scales web, KEDA scales workers on Celery's Redis list, and each disruption
    budget selects the pods it means."""
    assert one("HorizontalPodAutoscaler", "keycourier-web")["spec"]["scaleTargetRef"]["name"] == (
        "keycourier-web"
    )
    scaled = one("ScaledObject", "keycourier-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "keycourier-worker"
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == QUEUE
    auth = one("TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    assert {ref["name"] for ref in auth["secretTargetRef"]} == {"keycourier-secrets"}
    for name in ("keycourier-web", "keycourier-worker"):
        selector = one("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        labels = one("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


def test_metrics_are_scraped_where_they_are_served() -> None:
    """Prometheus scrapes the web pods on their port and each worker on WORKER_METRICS_PORT;
    the ingress exposes only the webhooks and the guests' links, not /metrics."""
    config = one("ConfigMap", "keycourier-config")["data"]
    worker = one("Deployment", "keycourier-worker")["spec"]["template"]
    assert worker["metadata"]["annotations"]["prometheus.io/port"] == config["WORKER_METRICS_PORT"]
    web = one("Deployment", "keycourier-web")["spec"]["template"]
    [container] = web["spec"]["containers"]
    assert web["metadata"]["annotations"]["prometheus.io/port"] == str(
        container["ports"][0]["containerPort"]
    )
    ingress = one("Ingress", "keycourier-web")["spec"]
    paths = [p["path"] for rule in ingress["rules"] for p in rule["http"]["paths"]]
    assert paths
    assert not [path for path in paths if not path.startswith(("/webhooks/", "/k/"))]


def app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path) of every route the web process serves, inside mounts too, from the app
    itself."""
    settings = load_settings(
        {
            "SEAM_WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
            "TEMPLATES_DIR": str(TEMPLATES),
            # Only read for its routes: never connected to.
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )

    def walk(routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, Mount):
                yield from walk(list(route.routes), prefix + route.path)
                if not route.routes:
                    yield "GET", prefix + route.path
            elif isinstance(route, Route):
                for method in route.methods or {"GET"}:
                    yield method, prefix + route.path

    return set(walk(list(create_app(settings).routes), ""))


def ingress_paths(name: str) -> dict[str, str]:
    """path -> pathType of an Ingress's rules, each checked to reach the web Service."""
    ingress = one("Ingress", name)["spec"]
    service = one("Service", "keycourier-web")["spec"]
    found = {}
    for rule in ingress["rules"]:
        assert rule["host"] in ingress["tls"][0]["hosts"]
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "keycourier-web"
            assert backend["port"]["name"] in {port["name"] for port in service["ports"]}
            found[path["path"]] = path["pathType"]
    return found


def test_ingress_routes_every_webhook_and_nothing_else(tmp_path: Path) -> None:
    """The public Ingress routes exactly the webhooks the app serves (Seam's, Twilio's status
    callbacks, SendGrid's events), each by its exact path, a hotel group's per-workspace Seam
    webhooks by their prefix, and the guests' resend links (/k/<token>) by theirs: not /ops,
    /api or /metrics."""
    routes = app_routes(tmp_path)
    webhooks = {path for method, path in routes if path.startswith("/webhooks/")}
    assert {"/webhooks/seam", "/webhooks/twilio/status", "/webhooks/sendgrid/events"} <= webhooks
    assert WORKSPACE_WEBHOOK.startswith("/webhooks/seam/{")
    guest_links = {path for method, path in routes if path.startswith("/k/")}
    assert guest_links == {"/k/{token}"}
    expected = {**dict.fromkeys(webhooks, "Exact"), "/webhooks/seam/": "Prefix", "/k/": "Prefix"}
    assert ingress_paths("keycourier-web") == expected


def test_console_ingress_reaches_the_console_and_api_behind_an_allow_list(
    tmp_path: Path,
) -> None:
    """The optional console Ingress routes /ops and /api (every console route is under one of
    its prefixes, and only those) and carries an IP allow-list."""
    paths = ingress_paths("keycourier-console")
    assert paths == {"/ops": "Prefix", "/api": "Prefix"}
    console = [path for _, path in app_routes(tmp_path) if path.startswith(("/ops", "/api"))]
    assert len(console) >= 10
    for path in console:
        assert any(path == p or path.startswith(p + "/") for p in paths), path
    ingress = one("Ingress", "keycourier-console")
    allowed = ingress["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/whitelist-source-range"
    ]
    assert allowed
    assert "0.0.0.0/0" not in allowed.split(",")
    assert ingress["spec"]["tls"] == one("Ingress", "keycourier-web")["spec"]["tls"]


def test_migration_is_not_applied_with_the_app() -> None:
    """The base (what `kubectl apply -k` rolls out) holds no Job: the migration is a
    kustomization of its own that holds only it, and it needs nothing the app's apply
    creates (a first install runs it before them): only the Secret."""
    assert not [doc for doc in manifests(BASE) if doc["kind"] == "Job"]
    assert "migrate" not in str(kustomization(BASE)["resources"])
    [job] = manifests(MIGRATE)
    assert job["kind"] == "Job"
    spec = job["spec"]["template"]["spec"]
    assert "serviceAccountName" not in spec
    assert spec["automountServiceAccountToken"] is False
    [container] = spec["containers"]
    assert container["command"] == ["keycourier", "migrate"]
    for ref in container["envFrom"]:
        if "configMapRef" in ref:
            assert ref["configMapRef"]["optional"] is True
        else:
            assert ref["secretRef"]["name"] == "keycourier-secrets"


def shell_lines(document: str, section: str) -> list[str]:
    """The lines of the shell code blocks of one `###` section of a markdown document."""
    text = (ROOT / document).read_text()
    [body] = re.findall(rf"^### {section}\n(.*?)(?=^##)", text, flags=re.DOTALL | re.MULTILINE)
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", body, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_migrates_before_it_applies_the_app() -> None:
    """README's Kubernetes steps apply the migration, wait for the Job to complete, and only
    then apply the app; the old Job is deleted first (its template cannot change)."""
    lines = shell_lines("README.md", "Kubernetes")

    def where(pattern: str) -> int:
        [index] = [i for i, line in enumerate(lines) if re.fullmatch(pattern, line)]
        return index

    delete = where(r"kubectl -n keycourier delete job keycourier-migrate --ignore-not-found")
    migrate = where(r"kubectl apply -k deploy/overlays/hotel/migrate")
    wait = where(r"kubectl -n keycourier wait --for=condition=complete job/keycourier-migrate \S+")
    app = where(r"kubectl apply -k deploy/overlays/hotel")
    assert delete < migrate < wait < app


def test_example_overlays_render_the_app_and_its_migration_apart() -> None:
    """The example overlay renders the app without the Job, its migrate/ the Job alone, both
    in the same namespace with the same image, every object namespaced."""
    app = render(OVERLAYS / "example")
    migration = render(OVERLAYS / "example" / "migrate")
    assert kinds(migration) == {("Job", "keycourier-migrate")}
    assert not [doc for doc in app if doc["kind"] == "Job"]
    assert ("Ingress", "keycourier-console") in kinds(app)
    assert {doc["metadata"].get("namespace") for doc in app + migration} == {"keycourier"}

    def images(objects: list[dict[str, Any]]) -> set[str]:
        return {
            container["image"]
            for doc in objects
            if doc["kind"] in ("Deployment", "Job")
            for container in doc["spec"]["template"]["spec"]["containers"]
        }

    assert images(app) == images(migration)
    [image] = images(app)
    assert image != "keycourier"
    hosts = {
        rule["host"] for doc in app if doc["kind"] == "Ingress" for rule in doc["spec"]["rules"]
    }
    assert len(hosts) == 1
    assert hosts != {"keys.example.com"}


def test_no_keda_overlay_scales_workers_with_a_plain_hpa() -> None:
    """Without KEDA, no keda.sh object is applied (their kinds would not exist) and an HPA
    scales the worker Deployment; the rest is the example overlay's."""
    component = kustomization(COMPONENTS / "no-keda")
    deleted = {
        (patch["kind"], patch["metadata"]["name"])
        for patch in (yaml.safe_load(p["patch"]) for p in component["patches"])
        if patch.get("$patch") == "delete"
    }
    keda = {(d["kind"], d["metadata"]["name"]) for d in documents() if "keda.sh" in d["apiVersion"]}
    assert deleted == keda
    hpa = one("HorizontalPodAutoscaler", "keycourier-worker")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "keycourier-worker"
    assert "replicas" not in one("Deployment", "keycourier-worker")["spec"]

    rendered = render(OVERLAYS / "no-keda")
    assert not [doc for doc in rendered if "keda.sh" in doc["apiVersion"]]
    assert ("HorizontalPodAutoscaler", "keycourier-worker") in kinds(rendered)
    assert {doc["metadata"].get("namespace") for doc in rendered} == {"keycourier"}
    assert kinds(rendered) == (kinds(render(OVERLAYS / "example")) - keda) | {
        ("HorizontalPodAutoscaler", "keycourier-worker")
    }


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def commands_in(line: str) -> list[list[str]]:
    """The simple commands of a shell line: split on `&&`, `||`, `;` and `|`, without the
    redirections (`> file`)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    redirected = False
    for word in lexer:
        if word in ("&&", "||", ";", "|"):
            commands.append([])
        elif word in (">", ">>", "<", "2>"):
            redirected = True
        elif redirected:
            redirected = False  # the file name
        else:
            commands[-1].append(word)
    assert all(commands), line
    return commands


def test_procfile_runs_real_commands() -> None:
    """Each Procfile process is keycourier commands that exist; the release checks the
    templates before it migrates; web trusts the router."""
    processes = procfile()
    assert set(processes) == {"release", "web", "worker", "beat"}
    for line in processes.values():
        for argv in commands_in(line):
            assert argv[0] == "keycourier", line
            assert accepts(argv[1:]), line
    assert commands_in(processes["release"]) == [
        ["keycourier", "templates", "check"],
        ["keycourier", "migrate"],
    ]
    for process in ("web", "worker", "beat"):
        assert len(commands_in(processes[process])) == 1, process
    assert "--forwarded-allow-ips '*'" in processes["web"]


def test_app_json_describes_every_setting_and_the_add_ons() -> None:
    """app.json provisions Postgres and Redis, runs every Procfile process, and describes
    every setting keycourier reads."""
    manifest = json.loads((ROOT / "app.json").read_text())
    plans = {addon["plan"].split(":")[0] for addon in manifest["addons"]}
    assert plans == {"heroku-postgresql", "heroku-redis"}
    assert set(manifest["formation"]) == set(procfile()) - {"release"}
    settings = {name.upper() for name in Settings.model_fields}
    assert set(manifest["env"]) == settings
    assert all(entry["description"] for entry in manifest["env"].values())


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_is_documented(document: str) -> None:
    """README's settings table and .env.example name every setting keycourier reads."""
    text = (ROOT / document).read_text()
    for name in Settings.model_fields:
        assert re.search(rf"\b{name.upper()}\b", text), f"{name.upper()} missing from {document}"


def env_file_entries(text: str) -> list[tuple[str, str]]:
    """KEY=VALUE lines as `docker run --env-file` and `kubectl create secret --from-env-file`
    read them: leading blanks dropped, `#` lines skipped, the key before the first `=`, the
    value verbatim after it (quotes and a trailing `# comment` included). Lines commented out
    as `# KEY=value` are read too: they are there to be uncommented."""
    entries = []
    for raw in text.splitlines():
        line = raw.lstrip()
        example = re.fullmatch(r"# ?([A-Z][A-Z0-9_]*=.*)", line)
        if example:
            line = example.group(1)
        elif not line or line.startswith("#"):
            continue
        assert "=" in line, f"not KEY=VALUE: {raw!r}"
        key, value = line.split("=", 1)
        entries.append((key, value))
    return entries


def test_env_example_reads_the_same_in_docker_and_kubectl() -> None:
    """Every value of .env.example (active or commented out) is what a shell would make of it:
    no quotes, no trailing comment, no blanks around it, so Docker and kubectl, which keep
    them, read the same value."""
    entries = env_file_entries((ROOT / ".env.example").read_text())
    assert len(entries) >= len(Settings.model_fields)
    for key, value in entries:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), key
        assert "#" not in value, f"{key}: a comment after the value becomes part of it"
        assert not set(value) & {"'", '"'}, f"{key}: quotes become part of the value"
        assert value == value.strip(), f"{key}: blanks around the value become part of it"


def test_env_file_reading_keeps_what_docker_keeps() -> None:
    """The reader above is as strict as Docker: a trailing comment and quotes stay in."""
    text = "A=1\n  # a comment\n# B='x'   # note\n\nC=a=b\n"
    assert env_file_entries(text) == [("A", "1"), ("B", "'x'   # note"), ("C", "a=b")]


def markdown_tables(text: str) -> list[list[str]]:
    """Each run of consecutive table lines (`| ... |`) outside code blocks, as its lines."""
    tables: list[list[str]] = []
    fenced = False
    previous_was_row = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        row = not fenced and line.startswith("|")
        if row:
            if previous_was_row:
                tables[-1].append(line)
            else:
                tables.append([line])
        previous_was_row = row
    return tables


def cells(row: str) -> list[str]:
    """A table row's cells: split on the pipes that are not escaped (`sms\\|email`)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


@pytest.mark.parametrize("document", ["README.md", "templates/README.md", "DEVELOPERS.md"])
def test_markdown_tables_render_whole(document: str) -> None:
    """Every table is one block: a header, its `|---|` line, then rows of as many cells. A
    blank line inside a table starts a block without a header, which renders as text."""
    tables = markdown_tables((ROOT / document).read_text())
    for table in tables:
        assert len(table) >= 2, table[0]
        assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", table[1]), f"no header line before {table[0]}"
        width = len(cells(table[0]))
        for row in table:
            assert len(cells(row)) == width, row


def test_every_setting_is_a_row_of_the_settings_table() -> None:
    """README's settings table (the one headed `variable`) has a row for every setting."""
    readme = (ROOT / "README.md").read_text()
    [table] = [t for t in markdown_tables(readme) if cells(t[0])[0] == "variable"]
    named = {name for row in table[2:] for name in re.findall(r"`([A-Z0-9_]+)`", cells(row)[0])}
    assert {name.upper() for name in Settings.model_fields} <= named


@pytest.mark.parametrize(("document", "at_least"), [("README.md", 8), ("templates/README.md", 4)])
def test_readme_shows_only_commands_that_exist(document: str, at_least: int) -> None:
    """Every `keycourier ...` command in the guide's code blocks and text is one the CLI
    accepts."""
    readme = (ROOT / document).read_text()
    fenced = re.findall(r"```(\w*)\n(.*?)```", readme, flags=re.DOTALL)
    blocks = [body for language, body in fenced if language in ("", "sh", "bash")]
    # keycourier at the start of a line (after VAR=value or a .venv/bin/ path), or run
    # through `heroku run` or `kubectl exec ... --`.
    shown = re.compile(
        r"^(?:[A-Z_]+=\S+ )*(?:\S*/bin/|heroku run |kubectl .* -- )?keycourier (.*)$"
    )
    lines = [
        match.group(1).split("#")[0]
        for block in blocks
        for line in block.splitlines()
        if (match := shown.match(line.strip()))
    ]
    # And the ones shown inline in the text, when they are whole commands (no placeholders).
    lines += [
        inline
        for inline in re.findall(r"`keycourier ([^`]*)`", readme)
        if not re.search(r"[\[<]|\.\.\.|URL|\bS\b", inline)
    ]
    # Each line may chain commands (`keycourier templates check && keycourier migrate`).
    commands = [
        argv
        for line in lines
        for argv in commands_in(f"keycourier {line}")
        if argv[0] == "keycourier"
    ]
    assert len(commands) >= at_least
    assert ["keycourier", "templates", "check"] in commands
    for argv in commands:
        assert accepts(argv[1:]), shlex.join(argv)


def test_dockerfile_runs_as_non_root_with_a_real_command() -> None:
    """The image runs as an unprivileged user and starts, as PID 1 (`exec`), the web process,
    trusting forwarded headers only from FORWARDED_ALLOW_IPS, whose default is not '*'."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    [user] = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert not user.startswith(("root", "0"))
    [cmd] = re.findall(r"^CMD (\[.*\])", dockerfile, flags=re.MULTILINE)
    shell, dash_c, script = json.loads(cmd)
    assert (shell, dash_c) == ("sh", "-c")
    [argv] = commands_in(script)
    assert argv[:2] == ["exec", "keycourier"]
    assert accepts(argv[2:])
    assert argv[2] == "serve"
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "$FORWARDED_ALLOW_IPS"
    [default] = re.findall(r"\bFORWARDED_ALLOW_IPS=(\S+)", dockerfile)
    assert default == "127.0.0.1"

"""The action providers a pipeline execution runs: Source S3 (and the connection / CodeCommit sources that
fail with their reason), Build/Test CodeBuild and Approval Manual, with the variables and artifacts they
read and write. A mixin of `PipelineExecutor` (it uses the executor's ctx, client, builds and scratch)."""
from __future__ import annotations

import json
import re
import secrets
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sdlf_cli.local.runtime.codebuild import BuildRequest, BuildResult
from sdlf_cli.local.runtime.pipeline_model import ActionFailed, ActionRun, ArtifactLocation, ExecutionRun, now

APPROVAL_TIMEOUT_S = 7 * 24 * 3600  # an approval expires after seven days on AWS
_VARIABLE = re.compile(r"#\{([A-Za-z0-9@\-_]+)\.([A-Za-z0-9@\-_.]+)\}")


class PipelineActions:
    # --- variables and artifacts -------------------------------------------------------------------------------
    def _resolve(self, run: ExecutionRun, configuration: dict[str, str]) -> dict[str, str]:
        known = {"codepipeline": {"PipelineExecutionId": run.execution_id}, "variables": run.variables,
                 **run.namespaces}
        missing: list[str] = []

        def value(match: re.Match) -> str:
            namespace, name = match.group(1), match.group(2)
            if name in known.get(namespace, {}):
                return str(known[namespace][name])
            missing.append(match.group(0))
            return match.group(0)

        resolved = {k: _VARIABLE.sub(value, str(v)) for k, v in configuration.items()}
        if missing:
            raise ActionFailed(f"Unable to resolve variable(s) {', '.join(sorted(set(missing)))}: no such namespace "
                               "or variable (a namespace is set on an earlier action that succeeded)",
                               code="ConfigurationError")
        return resolved

    def _input(self, run: ExecutionRun, name: str) -> ArtifactLocation:
        location = run.artifacts.get(name)
        if location is None:
            raise ActionFailed(f"Input artifact {name} was not produced by an earlier action of this execution",
                               code="ConfigurationError")
        return location

    def _store(self, run: ExecutionRun) -> dict[str, Any]:
        store = run.declaration.get("artifactStore")
        if store is None:
            stores = run.declaration.get("artifactStores") or []
            store = next((s["artifactStore"] for s in stores if s.get("region") == run.region),
                         stores[0]["artifactStore"] if stores else None)
        if store is None:
            raise ActionFailed("the pipeline has no artifact store", code="ConfigurationError")
        return store

    def _put_artifact(self, run: ExecutionRun, name: str, body: bytes, revision_id: str) -> ArtifactLocation:
        store = self._store(run)
        key = f"{run.pipeline[:20]}/{name[:10]}/{secrets.token_urlsafe(6)[:7]}"
        kwargs: dict[str, Any] = {}
        encryption = store.get("encryptionKey") or {}
        if encryption.get("id"):
            kwargs.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=encryption["id"])
        try:
            self.client("s3").put_object(Bucket=store["location"], Key=key, Body=body, **kwargs)
        except Exception as exc:
            raise ActionFailed(f"could not write artifact {name} to s3://{store['location']}/{key}: {exc}") from exc
        location = ArtifactLocation(name, store["location"], key, revision_id)
        run.artifacts[name] = location
        return location

    def _get_artifact(self, location: ArtifactLocation) -> bytes:
        try:
            return self.client("s3").get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
        except Exception as exc:
            raise ActionFailed(f"could not read input artifact {location.name} from "
                               f"s3://{location.bucket}/{location.key}: {exc}") from exc

    # --- providers -----------------------------------------------------------------------------------------
    def _source_s3(self, run: ExecutionRun, action: ActionRun) -> None:
        config = action.resolved_configuration
        bucket, key = config.get("S3Bucket"), config.get("S3ObjectKey")
        if not bucket or not key:
            raise ActionFailed("an S3 source action needs S3Bucket and S3ObjectKey", code="ConfigurationError")
        s3 = self.client("s3")
        try:
            versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        except Exception as exc:
            raise ActionFailed(f"The source bucket {bucket} cannot be read: {exc}") from exc
        if versioning != "Enabled":
            raise ActionFailed(f"Bucket {bucket} is not versioned: an S3 source action needs versioning enabled on "
                               "its bucket")
        try:
            obj = s3.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise ActionFailed(f"The object s3://{bucket}/{key} could not be read: the source object does not "
                               f"exist or is not accessible ({type(exc).__name__})") from exc
        body = obj["Body"].read()
        version_id = obj.get("VersionId") or ""
        etag = (obj.get("ETag") or "").strip('"')
        summary = (obj.get("Metadata") or {}).get("codepipeline-artifact-revision-summary", "")
        action.output_variables = {"VersionId": version_id, "ETag": etag}
        action.external_id = version_id
        action.summary = summary or None
        action.external_url = (f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={run.region}"
                               f"&prefix={key}")
        for artifact in action.declaration.get("outputArtifacts") or []:
            action.outputs.append(self._put_artifact(run, artifact["name"], body, version_id))
        run.revisions.append({"actionName": action.name, "revisionId": version_id, "revisionSummary": summary,
                              "revisionUrl": action.external_url, "created": obj.get("LastModified"),
                              "artifactName": (action.declaration.get("outputArtifacts") or [{}])[0].get("name")})

    def _source_connection(self, run: ExecutionRun, action: ActionRun) -> None:
        from sdlf_cli.local.cfn.cicd import CONNECTIONS

        config = action.resolved_configuration
        arn = config.get("ConnectionArn", "")
        connection = CONNECTIONS.get(arn)
        status = connection["ConnectionStatus"] if connection else "not found"
        raise ActionFailed(
            f"Unable to use Connection: {arn} (status {status}). The connection has no git host behind it on the "
            f"embedded emulator, so {config.get('FullRepositoryId', 'the repository')} "
            f"branch {config.get('BranchName', '?')} cannot be fetched; use an S3 source to run this pipeline "
            "locally.", code="ConfigurationError")

    def _source_codecommit(self, run: ExecutionRun, action: ActionRun) -> None:
        raise ActionFailed(f"CodeCommit repository {action.resolved_configuration.get('RepositoryName')} is not "
                           "available on the embedded emulator; use an S3 source", code="ConfigurationError")

    def _codebuild(self, run: ExecutionRun, action: ActionRun) -> None:
        config = action.resolved_configuration
        project = config.get("ProjectName")
        if not project:
            raise ActionFailed("a CodeBuild action needs ProjectName", code="ConfigurationError")
        if str(config.get("BatchEnabled", "false")).lower() == "true":
            raise ActionFailed("batch builds (BatchEnabled) do not run on the embedded emulator",
                               code="ConfigurationError")
        try:
            overrides = json.loads(config.get("EnvironmentVariables") or "[]")
        except json.JSONDecodeError as exc:
            raise ActionFailed(f"EnvironmentVariables of action {action.name} is not a JSON list: {exc}",
                               code="ConfigurationError") from exc
        if not isinstance(overrides, list) or not all(isinstance(v, dict) and "name" in v for v in overrides):
            raise ActionFailed(f"EnvironmentVariables of action {action.name} must be a JSON list of "
                               "{name, value, type}", code="ConfigurationError")
        primary_name = config.get("PrimarySource") or (action.inputs[0].name if action.inputs else None)
        scratch = Path(tempfile.mkdtemp(prefix="inputs-", dir=self._scratch()))
        primary, secondary = None, {}
        for location in action.inputs:
            path = scratch / f"{location.name}.zip"
            path.write_bytes(self._get_artifact(location))
            if location.name == primary_name:
                primary = path
            else:
                secondary[location.name] = path
        primary_location = next((loc for loc in action.inputs if loc.name == primary_name), None)
        request = BuildRequest(
            project=project, initiator=f"codepipeline/{run.pipeline}", primary_input=primary,
            secondary_inputs=secondary,
            source_version=(f"arn:aws:s3:::{primary_location.bucket}/{primary_location.key}"
                            if primary_location else ""),
            resolved_source_version=primary_location.revision_id if primary_location else "",
            environment_overrides=overrides,
            output_artifacts=[a["name"] for a in action.declaration.get("outputArtifacts") or []])
        result = self._build(run, action, request)
        action.output_variables = dict(result.exported)
        if result.status != "SUCCEEDED":
            raise ActionFailed(result.summary, summary=result.summary)
        for name, path in result.outputs.items():
            action.outputs.append(self._put_artifact(run, name, path.read_bytes(),
                                                     primary_location.revision_id if primary_location else ""))

    def _build(self, run: ExecutionRun, action: ActionRun, request: BuildRequest) -> BuildResult:
        from sdlf_cli.local.runtime.buildspec import BuildError

        # The build id shows on the action as soon as the build exists, as the console links it while it runs.
        request.on_start = lambda build: self._show_build(run, action, build)
        try:
            return self.builds.run(request)
        except BuildError as exc:
            raise ActionFailed(exc.message, code="ConfigurationError") from exc

    def _show_build(self, run: ExecutionRun, action: ActionRun, build: dict[str, Any]) -> None:
        action.external_id = build["id"]
        action.external_url = (f"https://{run.region}.console.aws.amazon.com/codesuite/codebuild/{run.account_id}/"
                               f"projects/{build['projectName']}/build/{build['id']}/?region={run.region}")

    def _approval(self, run: ExecutionRun, action: ActionRun) -> None:
        config = action.resolved_configuration
        action.token = str(uuid.uuid4())
        action.last_update = now()
        expires = datetime.now(timezone.utc) + timedelta(seconds=APPROVAL_TIMEOUT_S)
        topic = config.get("NotificationArn")
        if topic:
            self._notify_approval(run, action, topic, expires)
        deadline = time.monotonic() + APPROVAL_TIMEOUT_S
        while not action.approval.wait(0.5):
            if run.stopping or self._closed:
                raise ActionFailed("The execution was stopped while waiting for approval", code="JobFailed")
            if time.monotonic() > deadline:
                raise ActionFailed("The approval request expired after 7 days", code="JobFailed")
        result = action.approval_result or {}
        action.summary = result.get("summary") or None
        if result.get("status") != "Approved":
            raise ActionFailed(f"Rejected: {result.get('summary') or 'no comment'}", code="JobFailed",
                               summary=result.get("summary") or None)

    def _notify_approval(self, run: ExecutionRun, action: ActionRun, topic: str, expires: datetime) -> None:
        config = action.resolved_configuration
        console = (f"https://console.aws.amazon.com/codesuite/codepipeline/pipelines/{run.pipeline}/view"
                   f"?region={run.region}")
        approval = {
            "pipelineName": run.pipeline, "stageName": action.stage, "actionName": action.name,
            "token": action.token, "expires": expires.strftime("%Y-%m-%dT%H:%MZ"),
            "externalEntityLink": config.get("ExternalEntityLink"),
            "approvalReviewLink": (f"https://console.aws.amazon.com/codesuite/codepipeline/pipelines/{run.pipeline}"
                                   f"/view?region={run.region}#/{action.stage}/{action.name}/approve/{action.token}"),
            "customData": config.get("CustomData"),
        }
        message = {"region": run.region, "consoleLink": console, "approval": approval}
        try:
            self.client("sns").publish(TopicArn=topic, Message=json.dumps(message),
                                       Subject=f"APPROVAL NEEDED: AWS CodePipeline {run.pipeline} for action "
                                               f"{action.name}"[:100])
        except Exception as exc:
            raise ActionFailed(f"could not publish the approval request to {topic}: {exc}") from exc

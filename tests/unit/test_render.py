"""render_layer / write_rendered: what the templates contain, and how rendering fails."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfn_tools import load_yaml

from sdlf_cli.config.model import Dataset, LakeConfig, Pipeline, Team
from sdlf_cli.cache_dir import CACHE_DIR_VARIABLE
from sdlf_cli.errors import RenderError
from sdlf_cli.render import RenderedTemplate, render_layer, write_rendered
from tests.snapshots import FULL, MINIMAL, TEMPLATES_DIR

FOUNDATIONS_OUTPUTS = {
    "KmsKeyArn": "kms/key-arn",
    "RawBucket": "buckets/raw",
    "StageBucket": "buckets/stage",
    "AnalyticsBucket": "buckets/analytics",
    "AthenaBucket": "buckets/athena",
    "LogsBucket": "buckets/logs",
    "CatalogTable": "tables/catalog",
    "ExecutionsTable": "tables/executions",
    "QualityTable": "tables/quality",
    "NotificationsTopicArn": "topics/notifications",
    "AthenaWorkgroup": "athena/workgroup",
    "CatalogQueueUrl": "queues/catalog",
    "CatalogDlqUrl": "queues/catalog-dlq",
    "CatalogFunction": "functions/catalog",
    "DatalakeLayerArn": "layers/datalake",
}


def render_one(cfg: LakeConfig, layer: str) -> tuple[RenderedTemplate, dict]:
    (rendered,) = render_layer(cfg, layer, TEMPLATES_DIR)
    return rendered, load_yaml(rendered.body)


def of_type(template: dict, resource_type: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


# --- the layers' identity ---------------------------------------------------------------------------


def test_bootstrap_and_foundations_render_one_stack_each_named_by_names():
    boot, _ = render_one(FULL, "bootstrap")
    found, _ = render_one(FULL, "foundations")
    assert (boot.layer, boot.name, boot.stack_name) == ("bootstrap", "bootstrap", "acme-lake-dev-bootstrap")
    assert (found.layer, found.name, found.stack_name) == ("foundations", "foundations", "acme-lake-dev-foundations")
    assert found.source == TEMPLATES_DIR / "foundations" / "foundations.yaml.j2"
    assert found.region == "eu-west-1"
    assert found.output_name == "foundations/acme-lake-dev-foundations.yaml"


def test_write_rendered_writes_build_layer_stack_yaml(tmp_path):
    templates = render_layer(FULL, "bootstrap", TEMPLATES_DIR) + render_layer(FULL, "foundations", TEMPLATES_DIR)
    paths = write_rendered(templates, tmp_path / "build")
    assert paths == [
        tmp_path / "build" / "bootstrap" / "acme-lake-dev-bootstrap.yaml",
        tmp_path / "build" / "foundations" / "acme-lake-dev-foundations.yaml",
    ]
    assert [p.read_text() for p in paths] == [t.body for t in templates]


# --- bootstrap contract -----------------------------------------------------------------------------


def test_bootstrap_contract():
    _, tpl = render_one(FULL, "bootstrap")
    assert set(tpl["Outputs"]) == {"ArtifactsBucket", "ArtifactsKeyArn"}
    assert "Parameters" not in tpl  # nothing to fill: it is deployed first
    buckets = of_type(tpl, "AWS::S3::Bucket")
    assert set(buckets) == {"rArtifactsBucket", "rArtifactsLogsBucket"}
    bucket = buckets["rArtifactsBucket"]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert props["BucketName"] == {"Fn::Sub": "acme-lake-dev-${AWS::Region}-${AWS::AccountId}-artifacts"}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert sse["BucketKeyEnabled"] is True
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "rArtifactsLogsBucket"}
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in of_type(tpl, "AWS::S3::BucketPolicy").values()}
    assert set(policies) == set(buckets)
    for policy in policies.values():  # TLS only, on both buckets
        deny = policy["Properties"]["PolicyDocument"]["Statement"][-1]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (alias,) = of_type(tpl, "AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/acme-lake-dev-artifacts"


# --- foundations contract ---------------------------------------------------------------------------


def test_foundations_outputs_and_ssm_parameters_follow_the_contract():
    _, tpl = render_one(FULL, "foundations")
    assert set(tpl["Outputs"]) == set(FOUNDATIONS_OUTPUTS)
    assert all("Export" not in o for o in tpl["Outputs"].values())
    ssm = {r["Properties"]["Name"]: r["Properties"] for r in of_type(tpl, "AWS::SSM::Parameter").values()}
    names = FULL.names
    assert set(ssm) == {names.ssm(path) for path in FOUNDATIONS_OUTPUTS.values()}
    for key, path in FOUNDATIONS_OUTPUTS.items():
        assert ssm[names.ssm(path)]["Type"] == "String"
        assert ssm[names.ssm(path)]["Value"] == tpl["Outputs"][key]["Value"], key


def test_foundations_declares_only_the_deployer_parameters():
    _, minimal = render_one(MINIMAL, "foundations")
    assert set(minimal["Parameters"]) == {"pArtifactsBucket", "pCodeCatalogKey", "pLayerDatalakeKey"}
    _, full = render_one(FULL, "foundations")
    assert set(full["Parameters"]) == {"pArtifactsBucket", "pCodeCatalogKey", "pLayerDatalakeKey", "pLakeFormationAdmin"}
    # Required: the deployer always passes the principal CloudFormation acts as (or lake_formation_admins).
    assert "Default" not in full["Parameters"]["pLakeFormationAdmin"]
    assert full["Parameters"]["pLakeFormationAdmin"]["AllowedPattern"].startswith("^arn:aws")


def test_foundations_buckets():
    _, tpl = render_one(FULL, "foundations")
    buckets = of_type(tpl, "AWS::S3::Bucket")
    by_kind = {b["Properties"]["BucketName"]["Fn::Sub"].rsplit("-", 1)[1]: b for b in buckets.values()}
    assert set(by_kind) == {"raw", "stage", "analytics", "athena", "logs"}
    for kind, bucket in by_kind.items():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain", kind
        assert props["BucketName"] == {"Fn::Sub": FULL.names.bucket(kind)}
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any("NoncurrentVersionExpiration" in r for r in rules), kind
        assert any("AbortIncompleteMultipartUpload" in r for r in rules), kind
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        if kind == "logs":
            # server access logging cannot deliver to SSE-KMS buckets
            assert sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
            assert "LoggingConfiguration" not in props
        else:
            assert sse["ServerSideEncryptionByDefault"] == {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": ["rKmsKey", "Arn"]},
            }
            assert sse["BucketKeyEnabled"] is True
            assert props["LoggingConfiguration"] == {
                "DestinationBucketName": {"Ref": "rLogsBucket"},
                "LogFilePrefix": f"{kind}/",
            }
        events = props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration")
        assert events == ({"EventBridgeEnabled": True} if kind in ("raw", "stage", "analytics") else None), kind


def test_foundations_bucket_policies_deny_plain_http_and_foreign_encryption_but_not_default_encryption():
    _, tpl = render_one(FULL, "foundations")
    policies = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
                for p in of_type(tpl, "AWS::S3::BucketPolicy").values()}
    assert set(policies) == {"rRawBucket", "rStageBucket", "rAnalyticsBucket", "rAthenaBucket", "rLogsBucket"}
    for bucket, statements in policies.items():
        by_sid = {s["Sid"]: s for s in statements}
        assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        if bucket == "rLogsBucket":
            allow = by_sid["AllowS3ServerAccessLogs"]
            assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
            continue
        wrong_algorithm = by_sid["DenyEncryptionOtherThanKms"]["Condition"]
        # only when the header is present ("Null": false), so default encryption still applies
        assert wrong_algorithm["Null"] == {"s3:x-amz-server-side-encryption": "false"}
        assert wrong_algorithm["StringNotEquals"] == {"s3:x-amz-server-side-encryption": "aws:kms"}
        no_key = by_sid["DenyKmsWithoutLakeKey"]["Condition"]
        assert no_key["StringEquals"] == {"s3:x-amz-server-side-encryption": "aws:kms"}
        assert no_key["Null"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}
        wrong_key = by_sid["DenyOtherKmsKeys"]["Condition"]
        assert wrong_key["Null"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}


def test_foundations_tables():
    _, tpl = render_one(FULL, "foundations")
    tables = {t["Properties"]["TableName"]: t for t in of_type(tpl, "AWS::DynamoDB::Table").values()}
    names = FULL.names
    assert set(tables) == {names.table(k) for k in ("catalog", "executions", "quality")}
    for name, table in tables.items():
        props = table["Properties"]
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", name
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        # The quality table is per dataset (id "<team>/<dataset>") and run ("<iso time>#<batch id>").
        expected_keys = [{"AttributeName": "id", "KeyType": "HASH"}]
        if name == names.table("quality"):
            expected_keys.append({"AttributeName": "run_id", "KeyType": "RANGE"})
        assert props["KeySchema"] == expected_keys
        assert props["SSESpecification"] == {
            "SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Fn::GetAtt": ["rKmsKey", "Arn"]}}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    catalog_index = tables[names.table("catalog")]["Properties"]["GlobalSecondaryIndexes"]
    assert catalog_index == [{
        "IndexName": "by-dataset",
        "KeySchema": [{"AttributeName": "dataset_id", "KeyType": "HASH"},
                      {"AttributeName": "updated_at", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
    }]
    executions = tables[names.table("executions")]["Properties"]
    assert executions["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert executions["GlobalSecondaryIndexes"][0]["KeySchema"][1] == {"AttributeName": "started_at", "KeyType": "RANGE"}


def test_foundations_catalog_consumer():
    _, tpl = render_one(FULL, "foundations")
    res = tpl["Resources"]
    queue, dlq = res["rCatalogQueue"]["Properties"], res["rCatalogDlq"]["Properties"]
    function = res["rCatalogFunction"]["Properties"]
    assert queue["QueueName"] == "acme-lake-dev-catalog" and dlq["QueueName"] == "acme-lake-dev-catalog-dlq"
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["rCatalogDlq", "Arn"]}, "maxReceiveCount": 5}
    assert queue["VisibilityTimeout"] == 6 * function["Timeout"] == 180
    assert "KmsMasterKeyId" in queue and "KmsMasterKeyId" in dlq

    rule = res["rCatalogRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.s3"]
    assert rule["EventPattern"]["detail-type"] == ["Object Created", "Object Deleted"]
    assert rule["EventPattern"]["detail"]["bucket"]["name"] == [
        {"Ref": "rRawBucket"}, {"Ref": "rStageBucket"}, {"Ref": "rAnalyticsBucket"}]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["rCatalogQueue", "Arn"]}
    statement, tls_only = res["rCatalogQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["rCatalogRule", "Arn"]}}}
    assert tls_only["Effect"] == "Deny" and tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    assert function["FunctionName"] == "acme-lake-dev-catalog"
    assert (function["Runtime"], function["Handler"], function["MemorySize"]) == ("python3.12", "handler.handler", 256)
    assert function["Code"] == {"S3Bucket": {"Ref": "pArtifactsBucket"}, "S3Key": {"Ref": "pCodeCatalogKey"}}
    assert function["Layers"] == [{"Ref": "rDatalakeLayer"}]
    env = function["Environment"]["Variables"]
    assert env["CATALOG_TABLE"] == {"Ref": "rCatalogTable"}
    assert json.loads(env["BUCKET_STAGES"]["Fn::Sub"]) == {
        "${rRawBucket}": "raw", "${rStageBucket}": "stage", "${rAnalyticsBucket}": "analytics"}
    assert (env["POWERTOOLS_SERVICE_NAME"], env["POWERTOOLS_LOG_LEVEL"]) == ("catalog", "INFO")

    layer = res["rDatalakeLayer"]["Properties"]
    assert layer["Content"] == {"S3Bucket": {"Ref": "pArtifactsBucket"}, "S3Key": {"Ref": "pLayerDatalakeKey"}}
    assert layer["CompatibleRuntimes"] == ["python3.12"]

    mapping = res["rCatalogEventSourceMapping"]["Properties"]
    assert mapping["BatchSize"] == 10 and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    log_group = res["rCatalogLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == "/aws/lambda/acme-lake-dev-catalog" and "KmsKeyId" in log_group


def test_foundations_catalog_role_is_scoped_to_its_own_resources():
    _, tpl = render_one(FULL, "foundations")
    statements = tpl["Resources"]["rCatalogRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        # X-Ray has no resource-level permissions (sdlf_cli/policy/exceptions.py).
        assert "*" not in resources or statement["Sid"] == "WriteTraces", statement["Sid"]
        assert all("*" not in a for a in statement["Action"]), statement["Sid"]


def test_foundations_key_topic_workgroup():
    _, tpl = render_one(FULL, "foundations")
    res = tpl["Resources"]
    assert res["rKmsKey"]["Properties"]["EnableKeyRotation"] is True
    assert res["rKmsKey"]["DeletionPolicy"] == res["rKmsKey"]["UpdateReplacePolicy"] == "Retain"
    assert res["rKmsKeyAlias"]["Properties"]["AliasName"] == "alias/acme-lake-dev-lake"
    topic = res["rNotificationsTopic"]["Properties"]
    assert topic["TopicName"] == "acme-lake-dev-notifications" and "KmsMasterKeyId" in topic
    wg = res["rAthenaWorkgroup"]["Properties"]
    assert wg["Name"] == "acme-lake-dev-primary"
    assert wg["WorkGroupConfiguration"]["EnforceWorkGroupConfiguration"] is True
    result = wg["WorkGroupConfiguration"]["ResultConfiguration"]
    assert result["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert result["OutputLocation"] == {"Fn::Sub": "s3://${rAthenaBucket}/results/"}


def test_email_subscription_only_when_an_address_is_configured():
    _, full = render_one(FULL, "foundations")
    (subscription,) = of_type(full, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "data-team@example.com"
    assert subscription["Properties"]["Protocol"] == "email"
    _, minimal = render_one(MINIMAL, "foundations")
    assert of_type(minimal, "AWS::SNS::Subscription") == {}


def test_lake_formation_resources_only_when_enabled():
    _, full = render_one(FULL, "foundations")
    registered = [r["Properties"] for r in of_type(full, "AWS::LakeFormation::Resource").values()]
    assert [r["ResourceArn"] for r in registered] == [
        {"Fn::GetAtt": [b, "Arn"]} for b in ("rRawBucket", "rStageBucket", "rAnalyticsBucket")]
    assert all(r["UseServiceLinkedRole"] is True for r in registered)
    (settings,) = of_type(full, "AWS::LakeFormation::DataLakeSettings").values()
    assert "Condition" not in settings
    assert settings["Properties"]["MutationType"] == "APPEND"
    assert settings["Properties"]["Admins"] == [{"DataLakePrincipalIdentifier": {"Ref": "pLakeFormationAdmin"}}]
    _, minimal = render_one(MINIMAL, "foundations")
    assert not [r for r in minimal["Resources"].values() if r["Type"].startswith("AWS::LakeFormation::")]
    assert "Conditions" not in minimal


# --- per-unit layers (team / pipeline / dataset) -----------------------------------------------------

LAKE_WITH_TEAMS = LakeConfig(
    org="acme", app="lake", env="dev", region="eu-west-1",
    teams=(
        Team("sales", pipelines=(Pipeline("main", "sales"),),
             datasets=(Dataset("orders", "sales", "main"), Dataset("refunds", "sales", "main"))),
        Team("hr"),
    ),
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def minimal_template(description: str) -> str:
    return (
        f"Description: {description}\n"
        "Resources:\n"
        "  rTopic:\n"
        "    Type: AWS::SNS::Topic\n"
    )


def test_team_pipeline_and_dataset_layers_render_one_stack_per_unit(tmp_path):
    write(tmp_path / "team" / "team.yaml.j2", minimal_template("team {{ team.name }}"))
    write(tmp_path / "pipeline" / "pipeline.yaml.j2", minimal_template("{{ team.name }} {{ pipeline.name }}"))
    write(tmp_path / "dataset" / "dataset.yaml.j2",
          minimal_template("{{ team.name }} {{ dataset.name }} via {{ pipeline.name }}"))

    teams = render_layer(LAKE_WITH_TEAMS, "team", tmp_path)
    assert [(t.name, t.stack_name) for t in teams] == [
        ("sales", "acme-lake-dev-team-sales"), ("hr", "acme-lake-dev-team-hr")]
    assert teams[0].body.startswith("Description: team sales\n")

    (pipeline,) = render_layer(LAKE_WITH_TEAMS, "pipeline", tmp_path)
    assert (pipeline.name, pipeline.stack_name) == ("sales/main", "acme-lake-dev-pipeline-sales-main")
    assert pipeline.body.startswith("Description: sales main\n")

    datasets = render_layer(LAKE_WITH_TEAMS, "dataset", tmp_path)
    assert [(d.name, d.stack_name) for d in datasets] == [
        ("sales/orders", "acme-lake-dev-dataset-sales-orders"),
        ("sales/refunds", "acme-lake-dev-dataset-sales-refunds")]
    assert datasets[1].body.startswith("Description: sales refunds via main\n")


def test_layer_with_no_units_renders_nothing(tmp_path):
    write(tmp_path / "team" / "team.yaml.j2", minimal_template("{{ team.name }}"))
    assert render_layer(MINIMAL, "team", tmp_path) == []


def test_partials_from_the_layer_folder_and_tojson_without_html_escaping(tmp_path):
    write(tmp_path / "foundations" / "foundations.yaml.j2",
          'Description: {{ "a<b & \'c\'" | tojson }}\nResources:\n{% include "_topic.yaml.j2" %}')
    write(tmp_path / "foundations" / "_topic.yaml.j2", "  rTopic:\n    Type: AWS::SNS::Topic\n")
    (rendered,) = render_layer(MINIMAL, "foundations", tmp_path)
    assert rendered.body == "Description: \"a<b & 'c'\"\nResources:\n  rTopic:\n    Type: AWS::SNS::Topic\n"


# --- errors --------------------------------------------------------------------------------------------


def test_unknown_layer():
    with pytest.raises(RenderError, match="unknown layer 'teams'"):
        render_layer(MINIMAL, "teams", TEMPLATES_DIR)


def test_missing_main_template_names_the_expected_file(tmp_path):
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    assert str(tmp_path / "foundations" / "foundations.yaml.j2") in str(err.value)
    assert "not found" in str(err.value)


def test_jinja_syntax_error_names_file_and_line(tmp_path):
    source = write(tmp_path / "foundations" / "foundations.yaml.j2",
                   "Resources:\n  rTopic:\n    Type: {{ 'AWS::SNS::Topic' \n{% if %}\n")
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    message = str(err.value)
    assert message.startswith(f"{source}:")
    assert "template syntax error" in message
    assert err.value.exit_code == 2


def test_syntax_error_in_a_partial_names_the_partial(tmp_path):
    write(tmp_path / "foundations" / "foundations.yaml.j2", 'Resources:\n{% include "_bad.yaml.j2" %}\n')
    partial = write(tmp_path / "foundations" / "_bad.yaml.j2", "  rTopic:\n    Type: {% endif %}\n")
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    assert str(err.value).startswith(f"{partial}:2: template syntax error")


def test_undefined_variable_names_the_template_line(tmp_path):
    source = write(tmp_path / "foundations" / "foundations.yaml.j2",
                   "Resources:\n  rTopic:\n    Type: AWS::SNS::Topic\n    Properties:\n"
                   "      TopicName: {{ cfg.topic_name }}\n")
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    assert str(err.value).startswith(f"{source}:5: undefined variable:")
    assert "topic_name" in str(err.value)


def test_undefined_variable_in_a_partial_names_the_partial_line(tmp_path):
    write(tmp_path / "foundations" / "foundations.yaml.j2", 'Resources:\n{% include "_part.yaml.j2" %}\n')
    partial = write(tmp_path / "foundations" / "_part.yaml.j2",
                    "  rTopic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: {{ nope }}\n")
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    assert str(err.value).startswith(f"{partial}:4: undefined variable: 'nope' is undefined")


def test_missing_partial_names_the_including_line(tmp_path):
    source = write(tmp_path / "foundations" / "foundations.yaml.j2", 'Resources:\n{% include "_gone.yaml.j2" %}\n')
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    assert str(err.value) == f"{source}:2: included template not found: _gone.yaml.j2"


def test_helper_rejecting_an_argument_names_the_template_line(tmp_path):
    source = write(tmp_path / "foundations" / "foundations.yaml.j2",
                   "Resources:\n  rBucket:\n    Type: AWS::S3::Bucket\n    Properties:\n"
                   "      BucketName: !Sub {{ names.bucket('scratch') | tojson }}\n")
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    assert str(err.value) == f"{source}:5: ValueError: unknown bucket kind 'scratch'"


def test_invalid_rendered_yaml_names_source_and_shows_rendered_line(tmp_path):
    source = write(tmp_path / "foundations" / "foundations.yaml.j2",
                   "Resources:\n  rTopic:\n    Type: AWS::SNS::Topic\n    Properties:\n"
                   "      TopicName: {{ names.topic('x') }}\n     DisplayName: [oops\n")
    with pytest.raises(RenderError) as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    message = str(err.value)
    assert message.startswith(f"{source}: rendered YAML for stack acme-lake-dev-foundations is invalid at rendered line 6")
    assert message.endswith("  6 |      DisplayName: [oops")


def test_short_form_intrinsics_parse(tmp_path):
    write(tmp_path / "foundations" / "foundations.yaml.j2",
          "Resources:\n  rTopic:\n    Type: AWS::SNS::Topic\n    Properties:\n"
          "      TopicName: !Sub '${AWS::StackName}-t'\n      DisplayName: !Select [0, !Split [',', 'a,b']]\n"
          "Outputs:\n  Arn:\n    Value: !GetAtt rTopic.TopicArn\n  Ref:\n    Value: !Ref rTopic\n")
    (rendered,) = render_layer(MINIMAL, "foundations", tmp_path)
    assert load_yaml(rendered.body)["Outputs"]["Arn"]["Value"] == {"Fn::GetAtt": ["rTopic", "TopicArn"]}


def test_output_without_resources_is_rejected(tmp_path):
    source = write(tmp_path / "foundations" / "foundations.yaml.j2", "Description: nothing here\n")
    with pytest.raises(RenderError, match="has no Resources mapping") as err:
        render_layer(MINIMAL, "foundations", tmp_path)
    assert str(err.value).startswith(str(source))


def test_templates_parse_as_cfn_flip_parses_them():
    from sdlf_cli.render import parse_template
    from tests.unit.security_lakes import all_rendered

    for template in all_rendered():
        assert parse_template(template.body) == load_yaml(template.body), template.output_name
    short_forms = "Outputs:\n  A:\n    Value: !GetAtt rQueue.Arn\n  B:\n    Value: !Sub ['${x}', {x: !Ref y}]\n"
    assert parse_template(short_forms) == load_yaml(short_forms)
    assert parse_template(short_forms)["Outputs"]["A"]["Value"] == {"Fn::GetAtt": ["rQueue", "Arn"]}


def test_compiled_templates_are_cached_in_the_project_and_an_edited_partial_compiles_anew(tmp_path, monkeypatch):
    import shutil

    monkeypatch.delenv(CACHE_DIR_VARIABLE, raising=False)

    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    first = render_layer(FULL, "foundations", templates)
    cached = sorted((tmp_path / ".sdlf" / "cache" / "jinja").iterdir())
    assert cached  # the main template and its partials
    assert [t.body for t in render_layer(FULL, "foundations", templates)] == [t.body for t in first]
    partial = next(p for p in (templates / "foundations").glob("_*.yaml.j2"))
    partial.write_text(partial.read_text() + "\n# edited\n")
    assert "# edited" in render_layer(FULL, "foundations", templates)[0].body

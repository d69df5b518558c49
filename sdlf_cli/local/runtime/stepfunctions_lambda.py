"""Step Functions' Lambda tasks invoke the function inside the emulator instead of through its HTTP API.

moto's interpreter invokes a task's function with a boto3 Lambda client (`_invoke_lambda_function`): the
execution's thread serialises and signs the request, the server parses it, verifies the signature, evaluates
the role's policies, and the answer goes back the same way - ~10 % of a stage-A burst's CPU in the emulator's
one interpreter, for the three tasks per object, none of it the function's work. One named patch answers that
call in the process, doing what the Lambda service does for it:
- the execution role's identity policy must allow `lambda:InvokeFunction` on the function (when IAM is
  enforced); a refusal is the ClientError the API gives (`AccessDeniedException`, AWS's message), which the
  interpreter turns into the task's failure as before;
- the function is found as the API finds it (an unknown one is `ResourceNotFoundException`) and run through the
  same function invoke the API calls (`lambda_hook`: warm workers, faults, logs, metrics);
- the answer is the one the client returned: status 200, the executed version, `FunctionError` for a failed
  invocation, the payload (a payload over Lambda's 6 MB is `Function.ResponseSizeTooLarge`, as moto answers);
- the request log counts it as the `lambda Invoke` it stands for (AWS bills it).
Asynchronous and dry-run invocations, a function named without its ARN, and anything else unusual take moto's
HTTP path unchanged.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable

PATCH_NAME = "states: Lambda tasks invoke their function in the emulator, as the execution role"
SESSION_NAME = "states-execution"  # the session the interpreter's other tasks sign with (stepfunctions.py)
MAX_PAYLOAD = 6000000
_TOO_LARGE = {"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
              "errorType": "Function.ResponseSizeTooLarge"}


def _client_error(code: str, message: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "Invoke")


def _authorize(role_arn: str | None, account_id: str, resource: str) -> None:
    from sdlf_cli.local.iam import enforcement

    if not enforcement.enforced():
        return
    from sdlf_cli.local.iam.credentials import role_keys

    keys = role_keys(role_arn, SESSION_NAME)
    if keys is None:
        return  # no role to act as: the emulator's root, as the HTTP path signs then
    principal = enforcement.assumed_role_arn(account_id, role_arn or "", SESSION_NAME)
    if not enforcement.role_session_allows(account_id, keys, "lambda:InvokeFunction", resource):
        raise _client_error("AccessDeniedException",
                            enforcement.denied_message(principal, "lambda:InvokeFunction", resource), 403)


def _in_process(original: Callable) -> Callable:
    from moto.core.exceptions import JsonRESTError

    from sdlf_cli.local import request_log

    def _invoke_lambda_function(parameters: dict, region: str, state_credentials: Any) -> dict:
        name = parameters.get("FunctionName")
        invocation_type = parameters.get("InvocationType") or "RequestResponse"
        if (not isinstance(name, str) or not name.startswith("arn:aws:lambda:") or invocation_type != "RequestResponse"
                or set(parameters) - {"FunctionName", "Payload", "Qualifier", "InvocationType"}):
            return original(parameters=parameters, region=region, state_credentials=state_credentials)
        from moto.awslambda.utils import get_backend

        arn_region, account_id = name.split(":")[3:5]
        request_log.record("lambda", "Invoke")
        _authorize(getattr(state_credentials, "role_arn", None), account_id, name)
        try:
            function = get_backend(account_id, arn_region).get_function(name, parameters.get("Qualifier"))
        except JsonRESTError as missing:
            raise _client_error(missing.error_type, missing.message, missing.code) from None
        response_headers: dict[str, str] = {}
        payload = function.invoke(parameters.get("Payload") or b"{}", {"X-Amz-Invocation-Type": "RequestResponse"},
                                  response_headers)
        if sys.getsizeof(payload) > MAX_PAYLOAD:
            payload, response_headers["x-amz-function-error"] = json.dumps(_TOO_LARGE).encode(), "Unhandled"
        text = payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text  # moto's interpreter keeps a payload that is not JSON as its text
        answer = {"StatusCode": 200, "ExecutedVersion": response_headers.get("x-amz-executed-version", "$LATEST"),
                  "Payload": body}
        if response_headers.get("x-amz-function-error"):
            answer["FunctionError"] = response_headers["x-amz-function-error"]
        return answer

    return _invoke_lambda_function


def install() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(lambda_eval_utils, "_invoke_lambda_function", PATCH_NAME, _in_process)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(PATCH_NAME)

"""IAM on the embedded emulator: the lake's compute acts as its own role, and moto enforces identity policies.

- `credentials`: assumed-role keys per role (STS AssumeRole on the emulator), for Lambda workers, Glue job
  runs, crawlers and the Step Functions interpreter;
- `enforcement`: turns moto's access control on; keys the emulator never issued (the CLI's, the tests')
  act as the account's root principal, so only the roles the lake creates are enforced;
- `resources`: the resource ARN each request acts on, per service (moto checks `"*"` for all but S3/SQS);
- `trust`: `sts:AssumeRole` by a role or user of the emulator also needs the target role's trust policy
  (principal, action and conditions read as AWS reads them); the services' own assume-role calls (root
  keys) are not checked against trust policies.

Not enforced: permissions boundaries, resource policies (bucket, queue, topic, Lambda permissions), KMS key
policies, Lake Formation grants, and conditions in identity policies (see README "IAM on the emulator").
"""

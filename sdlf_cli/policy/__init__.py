"""IAM policies of the rendered lake: the documents a template holds, whether their actions exist, the
actions allowed on Resource "*" (and why), and an evaluator of identity, boundary and resource policies."""

/**
 * The @pulumi/policy types the pack is written against, re-exported so code outside the pack (tests/policy,
 * which resolves modules from the root project where @pulumi/policy is not installed) can name them.
 */
export type {
    Policies,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";

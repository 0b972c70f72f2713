/** Every policy of the pack, in the order they are reported. index.ts serves exactly this list. */
import type { Policies } from "@pulumi/policy";
import { imageTagPinned } from "./policies/image-tag-pinned";
import { postgresSynchronousReplication } from "./policies/postgres-synchronous-replication";
import { readinessProbeRequired } from "./policies/readiness-probe-required";
import { replicaCountsMatch } from "./policies/replica-counts-match";
import { resourceRequestsRequired } from "./policies/resource-requests-required";
import { runAsNonRoot } from "./policies/run-as-non-root";
import { statefulsetHeadlessService } from "./policies/statefulset-headless-service";
import { statefulsetPvcRetention } from "./policies/statefulset-pvc-retention";
import { statefulsetVolumeClaims } from "./policies/statefulset-volume-claims";

export const policies: Policies = [
    replicaCountsMatch,
    statefulsetHeadlessService,
    statefulsetVolumeClaims,
    statefulsetPvcRetention,
    postgresSynchronousReplication,
    imageTagPinned,
    readinessProbeRequired,
    resourceRequestsRequired,
    runAsNonRoot,
];

/**
 * What Patroni may do in the Kubernetes API, and nothing more: it keeps the leader lock and the cluster state in
 * ConfigMaps (<scope>-config, -leader, -sync, -failover) and labels and annotates the member pods; the backup agent
 * annotates its pod and records Warning events; the preStop hook reads the StatefulSet. Namespaced:
 * nothing cluster-wide (bypass_api_service is off, so it does not read the `kubernetes` Endpoints in default).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

/** The Role's rules; exported for the tests. Patroni's own kubernetes/ example grants the same, minus Endpoints. */
export const PATRONI_RULES: k8s.types.input.rbac.v1.PolicyRule[] = [
    // The lock and the state. delete/deletecollection: `patronictl remove` (tearing a cluster's state down).
    {
        apiGroups: [""],
        resources: ["configmaps"],
        verbs: ["create", "get", "list", "patch", "update", "watch", "delete", "deletecollection"],
    },
    // Members are listed by label; each patches its own pod's role label and status annotation (and the backup
    // agent its backup annotations).
    { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "patch", "update", "watch"] },
    // The backup agent's Warning events: a failing WAL archive or backup shows in `kubectl get events`.
    { apiGroups: [""], resources: ["events"], verbs: ["create"] },
    // The leader's preStop reads the StatefulSet's replica count: it waits for a member that stays to hand over to.
    { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["get"] },
];

export interface PatroniRbacArgs {
    readonly namespace: pulumi.Input<string>;
    /** The ServiceAccount's (and Role's) name. */
    readonly name: string;
    readonly labels: Record<string, string>;
}

/** A ServiceAccount for the Postgres pods, a Role with {@link PATRONI_RULES}, and the binding. */
export class PatroniRbac extends pulumi.ComponentResource {
    public readonly serviceAccount: k8s.core.v1.ServiceAccount;
    public readonly role: k8s.rbac.v1.Role;
    public readonly roleBinding: k8s.rbac.v1.RoleBinding;
    public readonly serviceAccountName: string;

    constructor(name: string, args: PatroniRbacArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:database:PatroniRbac", name, {}, opts);
        const metadata = { name: args.name, namespace: args.namespace, labels: args.labels };
        this.serviceAccountName = args.name;
        this.serviceAccount = new k8s.core.v1.ServiceAccount(`${name}-service-account`, { metadata }, { parent: this });
        this.role = new k8s.rbac.v1.Role(`${name}-role`, { metadata, rules: PATRONI_RULES }, { parent: this });
        this.roleBinding = new k8s.rbac.v1.RoleBinding(
            `${name}-role-binding`,
            {
                metadata,
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: args.name },
                subjects: [{ kind: "ServiceAccount", name: args.name, namespace: args.namespace }],
            },
            { parent: this, dependsOn: [this.role, this.serviceAccount] },
        );
        this.registerOutputs({ serviceAccountName: this.serviceAccountName });
    }
}

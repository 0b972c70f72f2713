import * as assert from "node:assert";
import type { ProgramResource } from "./program";

export const T = {
    namespace: "kubernetes:core/v1:Namespace",
    secret: "kubernetes:core/v1:Secret",
    configMap: "kubernetes:core/v1:ConfigMap",
    service: "kubernetes:core/v1:Service",
    pvcPatch: "kubernetes:core/v1:PersistentVolumeClaimPatch",
    statefulSet: "kubernetes:apps/v1:StatefulSet",
    deployment: "kubernetes:apps/v1:Deployment",
    job: "kubernetes:batch/v1:Job",
    pdb: "kubernetes:policy/v1:PodDisruptionBudget",
    networkPolicy: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    ingress: "kubernetes:networking.k8s.io/v1:Ingress",
    release: "kubernetes:helm.sh/v3:Release",
    k8sProvider: "pulumi:providers:kubernetes",
    doCluster: "digitalocean:index/kubernetesCluster:KubernetesCluster",
    doVpc: "digitalocean:index/vpc:Vpc",
    docrCredentials: "digitalocean:index/containerRegistryDockerCredentials:ContainerRegistryDockerCredentials",
    randomPassword: "random:index/randomPassword:RandomPassword",
    serviceAccount: "kubernetes:core/v1:ServiceAccount",
    role: "kubernetes:rbac.authorization.k8s.io/v1:Role",
    roleBinding: "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    clusterRole: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    clusterRoleBinding: "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
} as const;

/** All registrations of a type. */
export function all(resources: ProgramResource[], type: string): ProgramResource[] {
    return resources.filter((r) => r.type === type);
}

/** The one registration of a type whose Kubernetes name (or logical name) is `name`. */
export function one(resources: ProgramResource[], type: string, name?: string): ProgramResource {
    const matches = all(resources, type).filter(
        (r) => name === undefined || r.inputs?.metadata?.name === name || r.name === name,
    );
    assert.strictEqual(
        matches.length,
        1,
        `expected exactly one ${type}${name ? ` named ${name}` : ""}, found ${matches.length}`,
    );
    return matches[0];
}

/** True when every key/value of `subset` is in `labels`. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
    return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A container's environment by name: the literal value, or the valueFrom reference. */
export function envOf(container: {
    env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
}): Record<string, any> {
    return Object.fromEntries(container.env.map((e) => [e.name, e.value ?? e.valueFrom]));
}

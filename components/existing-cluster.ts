import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

/** Arguments of {@link ExistingCluster}. */
export interface ExistingClusterArgs {
    /** The kubeconfig context to deploy into. @default the current context of $KUBECONFIG or ~/.kube/config */
    readonly context?: string;
}

/**
 * A cluster this program does not create (kind, minikube, any conformant cluster): no DigitalOcean resources,
 * just a Kubernetes provider bound to a kubeconfig context.
 */
export class ExistingCluster extends pulumi.ComponentResource {
    public readonly provider: k8s.Provider;

    constructor(name: string, args: ExistingClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("stateful-flask:infra:ExistingCluster", name, {}, opts);
        this.provider = new k8s.Provider(
            `${name}-k8s`,
            {
                ...(args.context ? { context: args.context } : {}),
                deleteUnreachable: false,
            },
            { parent: this },
        );
        this.registerOutputs({ provider: this.provider });
    }
}

/** The ingress section: the controller, the host, TLS and DNS. Rules and defaults: components/ingress.ts. */
import { INGRESS_CONTROLLERS, INGRESS_DEFAULTS, validateDnsController } from "../components/ingress";
import { ConfigError, validateEmail, validateHost, validateName, validateOneOf } from "../components/validate";
import type { Reader } from "./common";
import type { ClusterConfig } from "./cluster";

/** The component's controllers, and `none`: no Ingress at all (the API is reached by port-forward). */
export const INGRESS_CONTROLLER_SETTINGS = [...INGRESS_CONTROLLERS, "none"] as const;
export type IngressController = (typeof INGRESS_CONTROLLER_SETTINGS)[number];

export interface IngressConfig {
    readonly controller: IngressController;
    readonly className: string;
    readonly host: string;
    readonly tls: boolean;
    readonly tlsEmail?: string;
    readonly manageDns: boolean;
}

export function parseIngress(r: Reader, cluster: ClusterConfig): IngressConfig {
    const d = INGRESS_DEFAULTS;
    const controller = validateOneOf(
        "ingressController",
        r.string("ingressController", d.controller),
        INGRESS_CONTROLLER_SETTINGS,
    );
    const tls = r.boolean("tlsEnabled", d.tls);
    const manageDns = r.boolean("manageDns", d.manageDns);
    if (manageDns && cluster.mode !== "digitalocean") {
        throw new ConfigError(
            "manageDns",
            true,
            "a DigitalOcean DNS record needs clusterMode digitalocean; set manageDns false",
        );
    }
    validateDnsController(manageDns, controller);
    const ingress: IngressConfig = {
        controller,
        className: validateName("ingressClassName", r.string("ingressClassName", d.className)),
        host:
            controller === "none"
                ? validateHost("ingressHost", r.string("ingressHost", "stateful-flask.localtest.me"))
                : validateHost(
                      "ingressHost",
                      r.required("ingressHost", "the public host name of the API, such as drexii.me"),
                  ),
        tls,
        tlsEmail: tls
            ? validateEmail("tlsEmail", r.required("tlsEmail", "the e-mail address for the Let's Encrypt account"))
            : undefined,
        manageDns,
    };
    if (tls && controller === "none") {
        throw new ConfigError(
            "tlsEnabled",
            true,
            "TLS is served by the ingress; set ingressController traefik or existing",
        );
    }
    return ingress;
}

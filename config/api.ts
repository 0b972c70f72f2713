/** The API section: the Flask tasks API's Deployment. Rules and defaults: components/tasks-api.ts. */
import { API_DEFAULTS, API_HEALTH_PATH, API_LIMITS, validateApiPort } from "../components/tasks-api";
import { ConfigError, validateName, validatePinnedImage, validateReplicas } from "../components/validate";
import type { Reader } from "./common";

export interface ApiConfig {
    readonly namespace: string;
    readonly name: string;
    readonly image: string;
    /** As many as the database's members (REPLICA_LIMITS; the policy pack's replica-counts-match). */
    readonly replicas: number;
    /** gunicorn's port in the container, given to the image as PORT. */
    readonly port: number;
}

export function parseApi(r: Reader): ApiConfig {
    const d = API_DEFAULTS;
    // The image serves its health check at one path, which the probes use; a path set here was never served.
    if (r.isSet("apiHealthPath")) {
        throw new ConfigError(
            "apiHealthPath",
            r.string("apiHealthPath"),
            `this key is retired: the API image serves its health check at ${API_HEALTH_PATH} only, and the probes use it. Remove it (pulumi config rm apiHealthPath)`,
        );
    }
    return {
        namespace: validateName("apiNamespace", r.string("apiNamespace", d.namespace)),
        name: validateName("apiName", r.string("apiName", d.name), API_LIMITS.nameLength),
        image: validatePinnedImage(
            "apiImage",
            r.required(
                "apiImage",
                "the Flask API image, pinned to a release tag such as registry.example.com/stateful-flask:v1.0.0",
            ),
        ),
        replicas: validateReplicas("apiReplicas", r.number("apiReplicas", d.replicas)),
        port: validateApiPort(r.number("apiPort", d.port)),
    };
}

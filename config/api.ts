/** The API section: the Flask tasks API's Deployment. Rules and defaults: components/tasks-api.ts. */
import { API_DEFAULTS, API_LIMITS } from "../components/tasks-api";
import { validateHttpPath, validateName, validatePinnedImage } from "../components/validate";
import { Reader } from "./common";

export interface ApiConfig {
    readonly namespace: string;
    readonly name: string;
    readonly image: string;
    readonly replicas: number;
    readonly port: number;
    readonly healthPath: string;
}

export function parseApi(r: Reader): ApiConfig {
    const d = API_DEFAULTS;
    return {
        namespace: validateName("apiNamespace", r.string("apiNamespace", d.namespace)),
        name: validateName("apiName", r.string("apiName", d.name), API_LIMITS.nameLength),
        image: validatePinnedImage("apiImage",
            r.required("apiImage", "the Flask API image, pinned to a release tag such as registry.example.com/stateful-flask:v1.0.0")),
        replicas: r.integer("apiReplicas", d.replicas, API_LIMITS.replicas.min, API_LIMITS.replicas.max),
        port: r.integer("apiPort", d.port, API_LIMITS.port.min, API_LIMITS.port.max),
        healthPath: validateHttpPath("apiHealthPath", r.string("apiHealthPath", d.healthPath)),
    };
}

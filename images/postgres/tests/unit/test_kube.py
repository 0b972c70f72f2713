"""kube.connect: where the credentials come from, and the errors when there are none."""
import os
import tempfile
import unittest

import pod_path  # noqa: F401
from postgres_pod import kube
from postgres_pod.errors import ConfigError

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: local
clusters: [{name: local, cluster: {server: "https://127.0.0.1:6443/"}}]
users: [{name: admin, user: {token: secret-token}}]
contexts: [{name: local, context: {cluster: local, user: admin}}]
"""


class Connect(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "kubeconfig")
        with open(self.path, "w") as f:
            f.write(KUBECONFIG)

    def tearDown(self):
        self.dir.cleanup()

    def test_no_credentials_outside_a_pod_without_kubeconfig(self):
        with self.assertRaises(ConfigError) as e:
            kube.connect({})
        self.assertEqual(str(e.exception), "no Kubernetes credentials: not in a pod (no service account token) and KUBECONFIG is not set")

    def test_the_current_context_of_kubeconfig(self):
        c = kube.connect({"KUBECONFIG": self.path, "RUN_DIR": self.dir.name})
        self.assertEqual((c.base, c.headers), ("https://127.0.0.1:6443", {"Authorization": "Bearer secret-token"}))

    def test_a_context_that_is_not_there(self):
        with self.assertRaises(ConfigError) as e:
            kube.connect({"KUBECONFIG": self.path, "KUBECONFIG_CONTEXT": "prod"})
        self.assertEqual(str(e.exception), f"KUBECONFIG_CONTEXT='prod': no such context in {self.path}")


if __name__ == "__main__":
    unittest.main()

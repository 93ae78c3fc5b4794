"""The lab's Kubernetes API emulator: an aiohttp server that kopf, the ``kubernetes`` client and
``kubectl`` talk to through an ordinary kubeconfig."""

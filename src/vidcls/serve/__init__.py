"""``vidcls serve``: a trained model behind a small HTTP API and web page (the ``serve`` extra).

``settings`` holds the limits, ``uploads`` turns a request body into a video file, ``batcher`` merges the
model calls of concurrent requests, ``pipeline`` admits, decodes and scores, ``app`` holds the routes. Only
``settings`` imports nothing beyond vidcls, so the CLI can build its flags without FastAPI installed.
"""

"""The baseline of bench/http_latency.py: sentence-transformers behind
FastAPI, the way a Python team would serve query embeddings, with a stream
worker in the same process sharing the model.

  NLPFLOW_MODEL=models/all-MiniLM-L6-v2 BENCH_BACKLOG=30000 \\
    .venv/bin/python -m uvicorn http_baseline_app:app --app-dir bench --port 18571

POST /embed {"inputs": str | [str]} -> [[float]] (as TEI); POST /stream/start
starts a thread that encodes BENCH_BACKLOG short texts in batches of 32;
GET /stream/done says how many it has encoded.
"""

import os
import threading

from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(os.environ["NLPFLOW_MODEL"], device="cpu")
app = FastAPI()
done = 0


class EmbedRequest(BaseModel):
    inputs: str | list[str]


@app.get("/health")
def health():
    return {"ok": True}


@app.post("/embed")
def embed(req: EmbedRequest):
    texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
    return model.encode(texts, batch_size=32, normalize_embeddings=True).tolist()


def stream():
    global done
    texts = [f"stream record {i}: a short support question about item {i % 97}"
             for i in range(int(os.environ.get("BENCH_BACKLOG", "30000")))]
    for i in range(0, len(texts), 32):
        model.encode(texts[i:i + 32], batch_size=32, normalize_embeddings=True)
        done += len(texts[i:i + 32])


@app.post("/stream/start")
def stream_start():
    threading.Thread(target=stream, daemon=True).start()
    return {"started": True}


@app.get("/stream/done")
def stream_done():
    return {"done": done}

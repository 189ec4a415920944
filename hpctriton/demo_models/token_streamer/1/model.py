"""A decoupled token streamer: ``max_tokens`` responses of one word each per request.

``execute`` only queues the requests; ``slots`` worker threads serve them one at a time
each: ``prefill_s``, then one response per token every ``token_s``, then the final flag
on an empty response. The prompt's words are echoed first, then ``tok<i>`` words, so a
client can check the text as well as the count.
"""

import json
import queue
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


def _param(params, name, default):
    return params.get(name, {}).get("string_value", default)


def _optional_int(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    return int(tensor.as_numpy().reshape(-1)[0])


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.prefill_s = float(_param(params, "prefill_s", "0.02"))
        self.token_s = float(_param(params, "token_s", "0.005"))
        self.default_max_tokens = int(_param(params, "default_max_tokens", "16"))
        self.work: queue.Queue = queue.Queue()  # requests, then None per worker to stop
        self.workers = [threading.Thread(target=self._serve, daemon=True)
                        for _ in range(max(1, int(_param(params, "slots", "1"))))]
        for worker in self.workers:
            worker.start()

    def execute(self, requests):
        for request in requests:
            self.work.put(request)
        return None

    def _serve(self):
        while True:
            request = self.work.get()
            if request is None:
                return
            try:
                self._stream(request)
            except Exception as exc:  # the client must hear about it, not hang
                sender = request.get_response_sender()
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc))),
                            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def _stream(self, request):
        sender = request.get_response_sender()
        prompt = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy()
        words = prompt.reshape(-1)[0]
        words = (words.decode("utf-8", "replace") if isinstance(words, bytes)
                 else str(words)).split()
        max_tokens = _optional_int(request, "max_tokens")
        count = self.default_max_tokens if max_tokens is None else max(0, max_tokens)
        fail_after = _optional_int(request, "fail_after") or 0
        time.sleep(self.prefill_s)
        for i in range(count):
            if i:
                time.sleep(self.token_s)
            if 0 < fail_after <= i:
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"token_streamer: failing after {fail_after} tokens, as asked")),
                    flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            word = words[i] if i < len(words) else f"tok{i}"
            out = pb_utils.Tensor("text_output", np.array([(word + " ").encode()],
                                                          dtype=np.object_))
            sender.send(pb_utils.InferenceResponse(output_tensors=[out]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def finalize(self):
        for _ in self.workers:
            self.work.put(None)

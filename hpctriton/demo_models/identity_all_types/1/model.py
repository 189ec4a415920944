"""Identity for every datatype: OUT_<T> = IN_<T>.

BF16 has no numpy dtype, so that tensor is passed through DLPack instead of
``as_numpy``.
"""

import json

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.names = [(i["name"], "OUT_" + i["name"][3:], i["data_type"])
                      for i in config["input"]]

    def execute(self, requests):
        responses = []
        for request in requests:
            outputs = []
            for in_name, out_name, data_type in self.names:
                tensor = pb_utils.get_input_tensor_by_name(request, in_name)
                if data_type == "TYPE_BF16":
                    outputs.append(pb_utils.Tensor.from_dlpack(out_name, tensor.to_dlpack()))
                else:
                    outputs.append(pb_utils.Tensor(out_name, tensor.as_numpy()))
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses

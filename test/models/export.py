# Exports two small real models with PyTorch 1.13's TorchScript exporter:
#  swin-tiny-op14.onnx: torchvision's SwinTransformer (v1) at a tiny size, 2 stages, windows of 4x4 patches,
#  shifted windows in the second block; einsum-attn-op14.onnx: a block whose attention is written with torch.einsum.
import torch, torch.nn as nn, sys
from torchvision.models.swin_transformer import SwinTransformer
out = sys.argv[1]
torch.manual_seed(0)
swin = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4], stochastic_depth_prob=0.0, num_classes=10).eval()
x = torch.randn(1, 3, 32, 32)
torch.onnx.export(swin, x, f"{out}/swin-tiny-op14.onnx", opset_version=14, input_names=["pixel_values"], output_names=["logits"], do_constant_folding=True)

class EinsumAttention(nn.Module):
    def __init__(s, dim=32, heads=4):
        super().__init__(); s.h = heads; s.d = dim // heads
        s.qkv = nn.Linear(dim, 3 * dim); s.proj = nn.Linear(dim, dim)
    def forward(s, x):
        b, n, c = x.shape
        q, k, v = s.qkv(x).reshape(b, n, 3, s.h, s.d).unbind(2)
        a = torch.einsum("bqhd,bkhd->bhqk", q, k) * s.d ** -0.5
        a = a.softmax(-1)
        o = torch.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, n, c)
        return x + s.proj(o)

m = nn.Sequential(nn.Embedding(64, 32), EinsumAttention(), EinsumAttention()).eval()
ids = torch.randint(0, 64, (1, 12))
torch.onnx.export(m, ids, f"{out}/einsum-attn-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "hidden": {0: "batch", 1: "sequence"}})
print("ok")

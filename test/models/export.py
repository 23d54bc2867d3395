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
print("swin, einsum: ok")

# Four more, each from its own seed so that the models above stay as they were.
import math
import torch.nn.functional as F
dyn = lambda *names: {n: {0: "batch", 1: "sequence"} for n in names}

# mqa-alibi-op14.onnx: multi-query attention (one K/V head of 8 expanded to four query heads) with ALiBi slopes and a Trilu causal mask.
# The two blocks' slope buffers are equal, so the exporter keeps one and aliases the other through an Identity.
class MQA(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.d = d // h; s.q = nn.Linear(d, d); s.kv = nn.Linear(d, 2 * s.d); s.o = nn.Linear(d, d)
        s.register_buffer("slopes", torch.tensor([2 ** (-8 * (i + 1) / h) for i in range(h)]).view(1, h, 1, 1))
    def forward(s, x):
        b, t, c = x.shape
        q = s.q(x).view(b, t, s.h, s.d).transpose(1, 2)
        k, v = s.kv(x).split(s.d, dim=-1)
        k = k.unsqueeze(1).expand(b, s.h, t, s.d); v = v.unsqueeze(1).expand(b, s.h, t, s.d)
        pos = torch.arange(t)
        alibi = s.slopes * (pos.view(1, 1, 1, t) - pos.view(1, 1, t, 1)).float()
        causal = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        a = q @ k.transpose(-1, -2) / math.sqrt(s.d) + alibi + causal
        return x + s.o((a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c))
torch.manual_seed(1)
m = nn.Sequential(nn.Embedding(50, 32), MQA(), MQA()).eval()
torch.onnx.export(m, torch.randint(0, 50, (1, 12)), f"{out}/mqa-alibi-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))

# nnenc-causal-pad-op14.onnx: torch.nn.TransformerEncoder (batch first) given a causal mask and a key padding mask; the
# padding input is called `pad`, and torch merges it into the causal mask with a Where.
torch.manual_seed(2)
class Encoder(nn.Module):
    def __init__(s):
        super().__init__()
        s.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=24, nhead=3, dim_feedforward=48, batch_first=True, dropout=0.0), num_layers=2)
    def forward(s, x, pad):
        t = x.shape[1]
        return s.enc(x, mask=torch.triu(torch.full((t, t), float("-inf")), diagonal=1), src_key_padding_mask=pad)
torch.onnx.export(Encoder().eval(), (torch.randn(2, 7, 24), torch.zeros(2, 7, dtype=torch.bool)), f"{out}/nnenc-causal-pad-op14.onnx", opset_version=14, input_names=["x", "pad"], output_names=["y"], dynamic_axes=dyn("x", "pad", "y"))

# nanogpt-op11.onnx: nanoGPT's causal self-attention (a lower-triangular buffer, masked_fill with -inf) at opset 11.
class NanoAttention(nn.Module):
    def __init__(s, d=32, h=4, n=64):
        super().__init__(); s.h = h; s.c_attn = nn.Linear(d, 3 * d); s.c_proj = nn.Linear(d, d)
        s.register_buffer("bias", torch.tril(torch.ones(n, n)).view(1, 1, n, n))
    def forward(s, x):
        b, t, c = x.size()
        q, k, v = [y.view(b, t, s.h, c // s.h).transpose(1, 2) for y in s.c_attn(x).split(c, dim=2)]
        a = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        a = F.softmax(a.masked_fill(s.bias[:, :, :t, :t] == 0, float("-inf")), dim=-1)
        return x + s.c_proj((a @ v).transpose(1, 2).contiguous().view(b, t, c))
torch.manual_seed(3)
m = nn.Sequential(nn.Embedding(50, 32), NanoAttention(), NanoAttention()).eval()
torch.onnx.export(m, torch.randint(0, 50, (1, 16)), f"{out}/nanogpt-op11.onnx", opset_version=11, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))

# bloomish-baddbmm-op14.onnx: BLOOM's layout: scores from torch.baddbmm over a zero bias on [batch·heads, ·, ·], a
# causal masked_fill with the dtype's minimum, softmax in float32.
class Bloomish(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.d = d // h; s.qkv = nn.Linear(d, 3 * d); s.o = nn.Linear(d, d)
    def forward(s, x):
        b, t, c = x.shape
        qkv = s.qkv(x).view(b, t, s.h, 3, s.d)
        q = qkv[..., 0, :].transpose(1, 2).reshape(b * s.h, t, s.d)
        k = qkv[..., 1, :].permute(0, 2, 3, 1).reshape(b * s.h, s.d, t)
        v = qkv[..., 2, :].transpose(1, 2).reshape(b * s.h, t, s.d)
        sc = torch.baddbmm(torch.zeros(b * s.h, 1, t), q, k, beta=1.0, alpha=1 / math.sqrt(s.d)).view(b, s.h, t, t)
        sc = sc.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), torch.finfo(sc.dtype).min)
        p = F.softmax(sc, dim=-1, dtype=torch.float32).view(b * s.h, t, t)
        return x + s.o(torch.bmm(p, v).view(b, s.h, t, s.d).permute(0, 2, 1, 3).reshape(b, t, c))
torch.manual_seed(4)
torch.onnx.export(nn.Sequential(Bloomish(), Bloomish()).eval(), torch.randn(1, 10, 32), f"{out}/bloomish-baddbmm-op14.onnx", opset_version=14, input_names=["x"], output_names=["y"], dynamic_axes=dyn("x", "y"))

# fairseq-bmm-op13.onnx: fairseq's (and older transformers BART/Marian) attention: sequence-first activations, Q scaled
# before the product, heads folded into the batch for torch.bmm, and the key padding mask applied to a
# [batch, heads, q, k] view of the [batch·heads, q, k] scores, then viewed back.
class FairseqAttention(nn.Module):
    def __init__(s, d=24, h=3):
        super().__init__(); s.h = h; s.d = d // h; s.q = nn.Linear(d, d); s.k = nn.Linear(d, d); s.v = nn.Linear(d, d); s.o = nn.Linear(d, d)
    def forward(s, x, pad):
        t, b, c = x.shape
        fold = lambda y: y.contiguous().view(t, b * s.h, s.d).transpose(0, 1)
        q, k, v = fold(s.q(x) * s.d ** -0.5), fold(s.k(x)), fold(s.v(x))
        w = torch.bmm(q, k.transpose(1, 2)).view(b, s.h, t, t).masked_fill(pad.unsqueeze(1).unsqueeze(2), float("-inf")).view(b * s.h, t, t)
        return x + s.o(torch.bmm(F.softmax(w, dim=-1), v).transpose(0, 1).contiguous().view(t, b, c))
class Fairseq(nn.Module):
    def __init__(s): super().__init__(); s.a = FairseqAttention(); s.b = FairseqAttention()
    def forward(s, x, pad): return s.b(s.a(x, pad), pad)
torch.manual_seed(5)
torch.onnx.export(Fairseq().eval(), (torch.randn(10, 2, 24), torch.zeros(2, 10, dtype=torch.bool)), f"{out}/fairseq-bmm-op13.onnx", opset_version=13, input_names=["x", "pad"], output_names=["y"], dynamic_axes={"x": {0: "t", 1: "b"}, "pad": {0: "b", 1: "t"}, "y": {0: "t", 1: "b"}})

# cosine-attn-op14.onnx: SwinV2's scaled cosine attention (without windows): Q and K normalised, the scores multiplied
# by a learned per-head logit scale, exp(min(s, log 100)), a [heads, 1, 1] tensor computed in the graph.
class CosineAttention(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.hd = d // h; s.qkv = nn.Linear(d, 3 * d); s.o = nn.Linear(d, d)
        s.logit_scale = nn.Parameter(torch.log(10 * torch.ones((h, 1, 1))) + 0.1 * torch.randn(h, 1, 1))
    def forward(s, x):
        b, t, c = x.shape
        q, k, v = s.qkv(x).reshape(b, t, 3, s.h, s.hd).permute(2, 0, 3, 1, 4)
        a = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        a = a * torch.clamp(s.logit_scale, max=math.log(100.0)).exp()
        return x + s.o((a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c))
torch.manual_seed(6)
torch.onnx.export(nn.Sequential(CosineAttention(), CosineAttention()).eval(), torch.randn(1, 10, 32), f"{out}/cosine-attn-op14.onnx", opset_version=14, input_names=["x"], output_names=["y"], dynamic_axes=dyn("x", "y"))

# neox-rope-op14.onnx: GPT-NeoX's attention: one QKV projection packed per head ([B, T, heads, 3·head size]), a rotary
# embedding on the first quarter of each head's dims (rotate_half), a boolean causal buffer with torch.where.
def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)
class NeoXAttention(nn.Module):
    def __init__(s, d=32, h=4, n=64):
        super().__init__(); s.h = h; s.hd = d // h; s.rd = s.hd // 4; s.qkv = nn.Linear(d, 3 * d); s.o = nn.Linear(d, d)
        s.register_buffer("bias", torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n))
        inv = 1.0 / (10000 ** (torch.arange(0, s.rd, 2).float() / s.rd)); f = torch.outer(torch.arange(n).float(), inv); e = torch.cat((f, f), -1)
        s.register_buffer("cos", e.cos()[None, None]); s.register_buffer("sin", e.sin()[None, None])
    def forward(s, x):
        b, t, c = x.shape
        qkv = s.qkv(x).view(b, t, s.h, 3 * s.hd).permute(0, 2, 1, 3)
        q, k, v = qkv[..., : s.hd], qkv[..., s.hd : 2 * s.hd], qkv[..., 2 * s.hd :]
        cos, sin = s.cos[:, :, :t], s.sin[:, :, :t]
        rot = lambda y: torch.cat((y[..., : s.rd] * cos + rotate_half(y[..., : s.rd]) * sin, y[..., s.rd :]), -1)
        a = torch.matmul(rot(q), rot(k).transpose(-1, -2)) / math.sqrt(s.hd)
        a = F.softmax(torch.where(s.bias[:, :, :t, :t], a, torch.tensor(torch.finfo(a.dtype).min)), -1)
        return x + s.o(torch.matmul(a, v).permute(0, 2, 1, 3).reshape(b, t, c))
torch.manual_seed(7)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), NeoXAttention(), NeoXAttention()).eval(), torch.randint(0, 50, (1, 16)), f"{out}/neox-rope-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))

# perhead-temp-op14.onnx: packed QKV (timm-style reshape and permute), the scores scaled by head_dim ** -0.5 and then
# by a learned per-head temperature [1, heads, 1, 1].
class TemperatureAttention(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.hd = d // h; s.qkv = nn.Linear(d, 3 * d); s.o = nn.Linear(d, d)
        s.t = nn.Parameter(1 + 0.5 * torch.rand(1, h, 1, 1))
    def forward(s, x):
        b, t, c = x.shape
        q, k, v = s.qkv(x).reshape(b, t, 3, s.h, s.hd).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)) * s.hd ** -0.5 * s.t
        return x + s.o((a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c))
torch.manual_seed(8)
torch.onnx.export(nn.Sequential(TemperatureAttention(), TemperatureAttention()).eval(), torch.randn(1, 10, 32), f"{out}/perhead-temp-op14.onnx", opset_version=14, input_names=["x"], output_names=["y"], dynamic_axes=dyn("x", "y"))

# Exported with a fixed batch of 1 (no dynamic axes), as vision models often are: the batch axis is a constant 1 that
# no layout factor carries. timm-static-op14.onnx: timm's packed QKV ViT attention; pvt-sr-op14.onnx: PVT v2 /
# SegFormer spatial-reduction attention, K and V from one `kv` Linear over a strided-conv-reduced input, cut apart by
# indexing a [2, B, heads, N', size] tensor, Q from its own Linear.
class TimmAttention(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.hd = d // h; s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d)
    def forward(s, x):
        b, n, c = x.shape
        q, k, v = s.qkv(x).reshape(b, n, 3, s.h, s.hd).permute(2, 0, 3, 1, 4).unbind(0)
        a = (q @ k.transpose(-2, -1)) * s.hd ** -0.5
        return s.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))
class SRAttention(nn.Module):
    def __init__(s, d=32, h=2, sr=2):
        super().__init__(); s.h = h; s.hd = d // h; s.q = nn.Linear(d, d); s.kv = nn.Linear(d, 2 * d); s.proj = nn.Linear(d, d)
        s.sr = nn.Conv2d(d, d, sr, sr); s.norm = nn.LayerNorm(d)
    def forward(s, x, hw):
        b, n, c = x.shape
        q = s.q(x).reshape(b, n, s.h, s.hd).permute(0, 2, 1, 3)
        r = s.norm(s.sr(x.permute(0, 2, 1).reshape(b, c, *hw)).reshape(b, c, -1).permute(0, 2, 1))
        kv = s.kv(r).reshape(b, -1, 2, s.h, s.hd).permute(2, 0, 3, 1, 4)
        a = (q @ kv[0].transpose(-2, -1)) * s.hd ** -0.5
        return s.proj((a.softmax(-1) @ kv[1]).transpose(1, 2).reshape(b, n, c))
class PatchModel(nn.Module):
    def __init__(s, attn, patch):
        super().__init__(); s.embed = nn.Conv2d(3, 32, patch, patch); s.a = attn(); s.b = attn(); s.head = nn.Linear(32, 10)
    def forward(s, img):
        x = s.embed(img); hw = x.shape[2:]; x = x.flatten(2).transpose(1, 2)
        call = (lambda m, y: m(y, hw)) if isinstance(s.a, SRAttention) else (lambda m, y: m(y))
        x = x + call(s.a, x); x = x + call(s.b, x)
        return s.head(x.mean(1))
torch.manual_seed(9)
torch.onnx.export(PatchModel(TimmAttention, 8).eval(), torch.randn(1, 3, 32, 32), f"{out}/timm-static-op14.onnx", opset_version=14, input_names=["pixel_values"], output_names=["logits"])
torch.manual_seed(10)
torch.onnx.export(PatchModel(SRAttention, 4).eval(), torch.randn(1, 3, 32, 32), f"{out}/pvt-sr-op14.onnx", opset_version=14, input_names=["pixel_values"], output_names=["logits"])

# Oracles for share-kv 0:1 and share-attn 0:1 on mqa-alibi-op14.onnx, computed by PyTorch on the same weights: the
# second block uses the first block's (expanded) K and V, or its probabilities. Input: token ids (i * 7 + 3) % 50 for
# i = 0..39 as a [2, 20] batch; each file holds the [2, 20, 32] float32 output.
def mqa_block(blk, x, kv=None, probs=None):
    b, t, c = x.shape
    q = blk.q(x).view(b, t, blk.h, blk.d).transpose(1, 2)
    k, v = blk.kv(x).split(blk.d, dim=-1)
    k, v = k.unsqueeze(1).expand(b, blk.h, t, blk.d), v.unsqueeze(1).expand(b, blk.h, t, blk.d)
    if kv is not None: k, v = kv
    pos = torch.arange(t)
    alibi = blk.slopes * (pos.view(1, 1, 1, t) - pos.view(1, 1, t, 1)).float()
    p = (q @ k.transpose(-1, -2) / math.sqrt(blk.d) + alibi + torch.triu(torch.full((t, t), float("-inf")), diagonal=1)).softmax(-1)
    if probs is not None: p = probs
    return x + blk.o((p @ v).transpose(1, 2).reshape(b, t, c)), (k, v), p
torch.manual_seed(1)
mqa = nn.Sequential(nn.Embedding(50, 32), MQA(), MQA()).eval()
with torch.no_grad():
    h0 = mqa[0](torch.arange(40).mul(7).add(3).remainder(50).view(2, 20))
    h1, kv0, p0 = mqa_block(mqa[1], h0)
    assert torch.allclose(mqa_block(mqa[2], h1)[0], mqa(torch.arange(40).mul(7).add(3).remainder(50).view(2, 20)), atol=1e-6)
    mqa_block(mqa[2], h1, kv=kv0)[0].numpy().astype("float32").tofile(f"{out}/mqa-alibi-op14.share-kv-0-1.bin")
    mqa_block(mqa[2], h1, probs=p0)[0].numpy().astype("float32").tofile(f"{out}/mqa-alibi-op14.share-attn-0-1.bin")
# relpos-conformer-op14.onnx: Conformer / Transformer-XL relative-position self-attention (ESPnet's
# RelPositionMultiHeadedAttention, wenet): per-head biases u and v added to Q, scores = (Q+u)·Kᵀ + (Q+v)·Pᵀ with P a
# projection of sinusoidal position embeddings into the same heads, a [batch, 1, time] boolean mask input.
class RelPosAttention(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.dk = d // h
        s.linear_q = nn.Linear(d, d); s.linear_k = nn.Linear(d, d); s.linear_v = nn.Linear(d, d); s.linear_out = nn.Linear(d, d)
        s.linear_pos = nn.Linear(d, d, bias=False)
        s.pos_bias_u = nn.Parameter(0.1 * torch.randn(h, s.dk)); s.pos_bias_v = nn.Parameter(0.1 * torch.randn(h, s.dk))
    def forward(s, x, pos_emb, mask):
        b = x.shape[0]
        q = s.linear_q(x).view(b, -1, s.h, s.dk)
        k = s.linear_k(x).view(b, -1, s.h, s.dk).transpose(1, 2)
        v = s.linear_v(x).view(b, -1, s.h, s.dk).transpose(1, 2)
        p = s.linear_pos(pos_emb).view(1, -1, s.h, s.dk).transpose(1, 2)
        ac = torch.matmul((q + s.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        bd = torch.matmul((q + s.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        scores = ((ac + bd) / math.sqrt(s.dk)).masked_fill(mask.unsqueeze(1).eq(0), -10000.0)
        return s.linear_out(torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).contiguous().view(b, -1, s.h * s.dk))
class Conformerish(nn.Module):
    def __init__(s):
        super().__init__(); s.inp = nn.Linear(20, 32); s.a = RelPosAttention(); s.b = RelPosAttention()
    def forward(s, feats, mask):
        x = s.inp(feats); t = x.shape[1]
        pos = torch.arange(t).float().unsqueeze(1) * torch.exp(torch.arange(0, 32, 2).float() * -(math.log(10000.0) / 32))
        pe = torch.stack((torch.sin(pos), torch.cos(pos)), -1).view(1, t, 32)
        x = x + s.a(x, pe, mask)
        return x + s.b(x, pe, mask)
torch.manual_seed(11)
torch.onnx.export(Conformerish().eval(), (torch.randn(1, 16, 20), torch.ones(1, 1, 16, dtype=torch.bool)), f"{out}/relpos-conformer-op14.onnx", opset_version=14, input_names=["feats", "mask"], output_names=["out"], dynamic_axes={"feats": {0: "batch", 1: "time"}, "mask": {0: "batch", 2: "time"}, "out": {0: "batch", 1: "time"}})
# Attention with learned queries: siglip-map-op14.onnx, a patch embedding and SigLIP's multihead attention pooling
# head (a learned probe repeated to the batch as the query of torch.nn.MultiheadAttention over the patches);
# perceiver-cross-op14.onnx, Perceiver's cross-attention (latents expanded to the batch as Q, K and V from one `to_kv`).
class MAPHead(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.probe = nn.Parameter(torch.randn(1, 1, d)); s.attn = nn.MultiheadAttention(d, h, batch_first=True); s.norm = nn.LayerNorm(d)
    def forward(s, x):
        return s.norm(s.attn(s.probe.repeat(x.shape[0], 1, 1), x, x)[0])[:, 0]
class MAPEncoder(nn.Module):
    def __init__(s):
        super().__init__(); s.embed = nn.Conv2d(3, 32, 8, 8); s.head = MAPHead(); s.fc = nn.Linear(32, 10)
    def forward(s, img):
        return s.fc(s.head(s.embed(img).flatten(2).transpose(1, 2)))
torch.manual_seed(12)
torch.onnx.export(MAPEncoder().eval(), torch.randn(2, 3, 32, 32), f"{out}/siglip-map-op14.onnx", opset_version=14, input_names=["pixel_values"], output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
class PerceiverCross(nn.Module):
    def __init__(s, d=32, h=4, n=6):
        super().__init__(); s.h = h; s.d = d // h; s.to_q = nn.Linear(d, d, bias=False); s.to_kv = nn.Linear(d, 2 * d, bias=False); s.o = nn.Linear(d, d)
        s.latents = nn.Parameter(torch.randn(n, d))
    def forward(s, x):
        b, t, c = x.shape
        q = s.to_q(s.latents.unsqueeze(0).expand(b, -1, -1)).view(b, -1, s.h, s.d).transpose(1, 2)
        k, v = s.to_kv(x).chunk(2, dim=-1)
        k, v = k.view(b, t, s.h, s.d).transpose(1, 2), v.view(b, t, s.h, s.d).transpose(1, 2)
        a = torch.matmul(q, k.transpose(-1, -2)) * s.d ** -0.5
        return s.o((a.softmax(-1) @ v).transpose(1, 2).reshape(b, -1, c))
torch.manual_seed(13)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), PerceiverCross()).eval(), torch.randint(0, 50, (1, 12)), f"{out}/perceiver-cross-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["latent"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "latent": {0: "batch"}})
# Position terms computed from Q, K or V at run time: coat-crpe-op14.onnx, CoaT's convolutional relative position
# encoding (a depthwise convolution of V over the 4x4 patch grid, multiplied by Q and added to the attention output,
# so V and Q are also read outside the attention); deberta-disent-op14.onnx, DeBERTa's disentangled attention
# (content-to-position and position-to-content scores: Q and K against the relative-position embeddings projected by
# the same Q and K weights, taken per pair by torch.gather, scale (3 * head size) ** -0.5 from the runtime shape).
class CoatAttn(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d); s.conv = nn.Conv2d(d, d, 3, padding=1, groups=d)
    def forward(s, x):
        B, N, C = x.shape; hd = C // s.h; g = int(N ** 0.5)
        q, k, v = s.qkv(x).reshape(B, N, 3, s.h, hd).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1) * hd ** -0.5).softmax(-1)
        crpe = s.conv(v.transpose(1, 2).reshape(B, N, C).transpose(1, 2).reshape(B, C, g, g)).reshape(B, s.h, hd, N).transpose(-1, -2)
        return s.proj((a @ v + q * crpe).transpose(1, 2).reshape(B, N, C))
class Coat(nn.Module):
    def __init__(s):
        super().__init__(); s.embed = nn.Conv2d(3, 32, 8, 8); s.a = CoatAttn(); s.n = nn.LayerNorm(32); s.fc = nn.Linear(32, 10)
    def forward(s, img):
        x = s.embed(img).flatten(2).transpose(1, 2); x = x + s.a(s.n(x)); return s.fc(x.mean(1))
torch.manual_seed(14)
torch.onnx.export(Coat().eval(), torch.randn(2, 3, 32, 32), f"{out}/coat-crpe-op14.onnx", opset_version=14, input_names=["pixel_values"], output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})
class Disentangled(nn.Module):
    def __init__(s, d=32, h=4, span=4):
        super().__init__(); s.h = h; s.span = span; s.embed = nn.Embedding(50, d); s.rel = nn.Embedding(2 * span, d); s.n = nn.LayerNorm(d)
        s.qp, s.kp, s.vp, s.o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
    def heads(s, t):
        B, N, C = t.shape; return t.reshape(B, N, s.h, C // s.h).permute(0, 2, 1, 3)
    def forward(s, ids):
        x = s.n(s.embed(ids)); B, N, C = x.shape; hd = C // s.h
        q, k, v = s.heads(s.qp(x)), s.heads(s.kp(x)), s.heads(s.vp(x))
        idx = torch.clamp(torch.arange(N)[:, None] - torch.arange(N)[None, :] + s.span, 0, 2 * s.span - 1).expand(B, s.h, N, N)
        rel = s.rel.weight.unsqueeze(0); pk, pq = s.heads(s.kp(rel)), s.heads(s.qp(rel))
        c2p = torch.gather(q @ pk.transpose(-1, -2), -1, idx)
        p2c = torch.gather(k @ pq.transpose(-1, -2), -1, idx).transpose(-1, -2)
        a = ((q @ k.transpose(-1, -2) + c2p + p2c) * (3 * hd) ** -0.5).softmax(-1)
        return x + s.o((a @ v).permute(0, 2, 1, 3).reshape(B, N, C))
torch.manual_seed(15)
torch.onnx.export(Disentangled().eval(), torch.randint(0, 50, (2, 12)), f"{out}/deberta-disent-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "hidden": {0: "batch", 1: "sequence"}})
# keras-einsum-op14.onnx: attention as Keras' MultiHeadAttention writes it (and tf2onnx keeps it): EinsumDense
# projections with [hidden, heads, size] kernels, Q scaled by size ** -0.5, scores einsum('aecd,abcd->acbe', K, Q)
# (K is the first operand), einsum('acbe,aecd->abcd', P, V), an einsum output projection.
class KerasMHA(nn.Module):
    def __init__(s, D=32, H=4, d=8):
        super().__init__(); s.d = d
        s.wq, s.wk, s.wv = (nn.Parameter(torch.randn(D, H, d) * 0.2) for _ in range(3))
        s.bq, s.bk, s.bv = (nn.Parameter(torch.randn(H, d) * 0.1) for _ in range(3))
        s.wo = nn.Parameter(torch.randn(H, d, D) * 0.2); s.bo = nn.Parameter(torch.zeros(D))
    def forward(s, x):
        q, k, v = (torch.einsum('abc,cde->abde', x, w) + b for w, b in ((s.wq, s.bq), (s.wk, s.bk), (s.wv, s.bv)))
        a = torch.einsum('aecd,abcd->acbe', k, q * s.d ** -0.5).softmax(-1)
        return torch.einsum('abcd,cde->abe', torch.einsum('acbe,aecd->abcd', a, v), s.wo) + s.bo
torch.manual_seed(16)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), KerasMHA(), KerasMHA()).eval(), torch.randint(0, 50, (2, 10)), f"{out}/keras-einsum-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "hidden": {0: "batch", 1: "sequence"}})
# unet-attn-op14.onnx: a Stable Diffusion UNet transformer block as diffusers writes it (the classic AttnProcessor):
# latents [batch, 32, height, width] with height and width left open, flattened into height·width tokens; self- and
# cross-attention (to `encoder_hidden_states`) with heads folded into the batch (head_to_batch_dim), the head size
# computed at run time as width // heads, scores by torch.baddbmm over an empty tensor with beta 0.
class DiffusersAttn(nn.Module):
    def __init__(s, c=32, h=4, cross=None):
        super().__init__(); s.h = h; s.scale = (c // h) ** -0.5
        s.to_q = nn.Linear(c, c, bias=False); s.to_k = nn.Linear(cross or c, c, bias=False); s.to_v = nn.Linear(cross or c, c, bias=False); s.to_out = nn.Linear(c, c)
    def h2b(s, t):
        b, n, d = t.shape; return t.reshape(b, n, s.h, d // s.h).permute(0, 2, 1, 3).reshape(b * s.h, n, d // s.h)
    def b2h(s, t):
        bh, n, d = t.shape; return t.reshape(bh // s.h, s.h, n, d).permute(0, 2, 1, 3).reshape(bh // s.h, n, d * s.h)
    def forward(s, x, ctx=None):
        ctx = x if ctx is None else ctx
        q, k, v = s.h2b(s.to_q(x)), s.h2b(s.to_k(ctx)), s.h2b(s.to_v(ctx))
        scores = torch.baddbmm(torch.empty(q.shape[0], q.shape[1], k.shape[1], dtype=q.dtype), q, k.transpose(-1, -2), beta=0, alpha=s.scale)
        return s.to_out(s.b2h(torch.bmm(scores.softmax(-1), v)))
class UNetBlock(nn.Module):
    def __init__(s, c=32):
        super().__init__(); s.gn = nn.GroupNorm(8, c); s.proj_in = nn.Conv2d(c, c, 1); s.n1 = nn.LayerNorm(c); s.a1 = DiffusersAttn(); s.n2 = nn.LayerNorm(c)
        s.a2 = DiffusersAttn(cross=24); s.n3 = nn.LayerNorm(c); s.ff = nn.Sequential(nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)); s.proj_out = nn.Conv2d(c, c, 1)
    def forward(s, sample, enc):
        b, c, hh, ww = sample.shape
        x = s.proj_in(s.gn(sample)).permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        x = x + s.a1(s.n1(x)); x = x + s.a2(s.n2(x), enc); x = x + s.ff(s.n3(x))
        return sample + s.proj_out(x.reshape(b, hh, ww, c).permute(0, 3, 1, 2))
torch.manual_seed(17)
torch.onnx.export(UNetBlock().eval(), (torch.randn(2, 32, 8, 8), torch.randn(2, 7, 24)), f"{out}/unet-attn-op14.onnx", opset_version=14, input_names=["sample", "encoder_hidden_states"], output_names=["out"],
                  dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "encoder_hidden_states": {0: "batch", 1: "text"}, "out": {0: "batch", 2: "height", 3: "width"}})
print("ok")

# Masks and layouts of older and other exporters, each from its own seed (21–29; the models above stay as they were).
dyn = lambda *names: {n: {0: "batch", 1: "sequence"} for n in names}
# Windows written three ways. mistral-swa-op14.onnx: Mistral's eager mask from aranges, `(j <= i) & (i - j < w)` (the
# distance against a constant); mistral-ref-op14.onnx: Mistral's reference code, `tril(ones).triu(-w)`, log to 0/-inf;
# gptneo-local-op14.onnx: GPT-Neo, a global layer then a local one whose constant boolean band buffer (160 positions,
# window 80, wider than a 64×64 corner) is cut to the length.
class SlidingAttn(nn.Module):
    def __init__(s, d=32, h=4, w=4):
        super().__init__(); s.h = h; s.d = d // h; s.w = w
        s.q = nn.Linear(d, d, bias=False); s.k = nn.Linear(d, d, bias=False); s.v = nn.Linear(d, d, bias=False); s.o = nn.Linear(d, d, bias=False)
    def forward(s, x):
        b, t, c = x.shape
        q, k, v = (m(x).view(b, t, s.h, s.d).transpose(1, 2) for m in (s.q, s.k, s.v))
        i = torch.arange(t).view(t, 1); j = torch.arange(t).view(1, t)
        allowed = (j <= i) & (i - j < s.w)
        mask = torch.zeros(t, t).masked_fill(~allowed, torch.finfo(torch.float32).min)
        a = (q @ k.transpose(2, 3)) / math.sqrt(s.d) + mask
        return x + s.o((a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c))
torch.manual_seed(22)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), SlidingAttn(), SlidingAttn()).eval(), torch.randint(0, 50, (1, 12)), f"{out}/mistral-swa-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))

class RefSWA(nn.Module):
    def __init__(s, d=32, h=4, w=3):
        super().__init__(); s.h = h; s.d = d // h; s.w = w
        s.wq = nn.Linear(d, d, bias=False); s.wk = nn.Linear(d, d, bias=False); s.wv = nn.Linear(d, d, bias=False); s.wo = nn.Linear(d, d, bias=False)
    def forward(s, x):
        b, t, c = x.shape
        q, k, v = (m(x).view(b, t, s.h, s.d).transpose(1, 2) for m in (s.wq, s.wk, s.wv))
        mask = torch.full((t, t), 1.0).tril(0).triu(-s.w).log()
        a = (q @ k.transpose(-1, -2)) * s.d ** -0.5 + mask
        return x + s.wo((a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c))
torch.manual_seed(28)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), RefSWA(), RefSWA()).eval(), torch.randint(0, 50, (1, 12)), f"{out}/mistral-ref-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))
class NeoAttn(nn.Module):
    def __init__(s, local, d=32, h=4, maxpos=160, window=80):
        super().__init__(); s.h = h; s.d = d // h
        bias = torch.tril(torch.ones(maxpos, maxpos, dtype=torch.bool))
        if local: bias = torch.bitwise_xor(bias, torch.tril(bias, -window))
        s.register_buffer("bias", bias.view(1, 1, maxpos, maxpos), persistent=False)
        s.q_proj = nn.Linear(d, d, bias=False); s.k_proj = nn.Linear(d, d, bias=False); s.v_proj = nn.Linear(d, d, bias=False); s.out_proj = nn.Linear(d, d)
    def forward(s, x):
        b, t, c = x.shape
        q, k, v = (m(x).view(b, t, s.h, s.d).permute(0, 2, 1, 3) for m in (s.q_proj, s.k_proj, s.v_proj))
        w = torch.matmul(q.float(), k.float().transpose(-1, -2))
        causal = s.bias[:, :, k.size(-2) - q.size(-2): k.size(-2), : k.size(-2)]
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min, dtype=w.dtype))
        return x + s.out_proj((w.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, t, c))
torch.manual_seed(29)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), NeoAttn(False), NeoAttn(True)).eval(), torch.randint(0, 50, (1, 12)), f"{out}/gptneo-local-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))
# t5-relbias-op14.onnx: T5's encoder attention: no scaling, a relative position bias from log buckets (comparisons of
# distances inside the bucket computation) computed in the first layer and passed on, plus the padding mask.
def buckets(rel, n=8, maxd=16):
    n //= 2; ret = (rel > 0).long() * n; rel = rel.abs()
    exact = n // 2; small = rel < exact
    large = exact + (torch.log(rel.float() / exact) / math.log(maxd / exact) * (n - exact)).long()
    large = torch.min(large, torch.full_like(large, n - 1))
    return ret + torch.where(small, rel, large)
class T5Attn(nn.Module):
    def __init__(s, d=32, h=4, bias=False):
        super().__init__(); s.h = h; s.d = d // h
        s.q = nn.Linear(d, d, bias=False); s.k = nn.Linear(d, d, bias=False); s.v = nn.Linear(d, d, bias=False); s.o = nn.Linear(d, d, bias=False)
        s.rel = nn.Embedding(8, h) if bias else None
    def forward(s, x, mask, pb=None):
        b, t, c = x.shape
        q, k, v = (m(x).view(b, t, s.h, s.d).transpose(1, 2) for m in (s.q, s.k, s.v))
        scores = q @ k.transpose(3, 2)
        if pb is None:
            ctx = torch.arange(t)[:, None]; mem = torch.arange(t)[None, :]
            pb = s.rel(buckets(mem - ctx)).permute(2, 0, 1).unsqueeze(0)
            pb = pb + mask
        a = F.softmax((scores + pb).float(), dim=-1).type_as(scores)
        return s.o((a @ v).transpose(1, 2).reshape(b, t, c)), pb
class T5(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(50, 32); s.a1 = T5Attn(bias=True); s.a2 = T5Attn()
    def forward(s, ids, am):
        x = s.e(ids)
        mask = (1.0 - am[:, None, None, :].float()) * torch.finfo(torch.float32).min
        y, pb = s.a1(x, mask); x = x + y
        y, _ = s.a2(x, mask, pb); return x + y
torch.manual_seed(23)
torch.onnx.export(T5().eval(), (torch.randint(0, 50, (2, 12)), torch.ones(2, 12, dtype=torch.long)), f"{out}/t5-relbias-op14.onnx", opset_version=14, input_names=["input_ids", "attention_mask"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "attention_mask", "hidden"))

# albert-shared-op14.onnx: ALBERT: one attention layer's weights applied three times (the sites share initializers).
class BertAttn(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.d = d // h; s.q = nn.Linear(d, d); s.k = nn.Linear(d, d); s.v = nn.Linear(d, d); s.o = nn.Linear(d, d); s.n = nn.LayerNorm(d)
    def forward(s, x, mask):
        b, t, c = x.shape
        q, k, v = (m(x).view(b, t, s.h, s.d).permute(0, 2, 1, 3) for m in (s.q, s.k, s.v))
        a = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(s.d) + mask
        return s.n(x + s.o(torch.matmul(a.softmax(-1), v).permute(0, 2, 1, 3).reshape(b, t, c)))
class Albert(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(50, 32); s.layer = BertAttn()
    def forward(s, ids, am):
        x = s.e(ids); mask = (1.0 - am[:, None, None, :].float()) * -10000.0
        for _ in range(3): x = s.layer(x, mask)
        return x
torch.manual_seed(24)
torch.onnx.export(Albert().eval(), (torch.randint(0, 50, (2, 12)), torch.ones(2, 12, dtype=torch.long)), f"{out}/albert-shared-op14.onnx", opset_version=14, input_names=["input_ids", "attention_mask"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "attention_mask", "hidden"))

# distilbert-op14.onnx: DistilBERT before transformers 4.48: Q divided before the product, and the padding mask
# expanded to the scores' own shape (`expand_as(scores)`) for `masked_fill` with the dtype's minimum.
class DistilAttn(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.d = d // h; s.q_lin = nn.Linear(d, d); s.k_lin = nn.Linear(d, d); s.v_lin = nn.Linear(d, d); s.out_lin = nn.Linear(d, d)
    def forward(s, x, am):
        b, t, c = x.shape
        shape = lambda z: z.view(b, -1, s.h, s.d).transpose(1, 2)
        q = shape(s.q_lin(x)) / math.sqrt(s.d); k = shape(s.k_lin(x)); v = shape(s.v_lin(x))
        scores = torch.matmul(q, k.transpose(2, 3))
        mask = (am == 0).view(b, 1, 1, t).expand_as(scores)
        scores = scores.masked_fill(mask, torch.tensor(torch.finfo(scores.dtype).min))
        return x + s.out_lin(torch.matmul(F.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, -1, c))
class Distil(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(50, 32); s.a1 = DistilAttn(); s.a2 = DistilAttn()
    def forward(s, ids, am):
        x = s.e(ids); return s.a2(s.a1(x, am), am)
torch.manual_seed(27)
torch.onnx.export(Distil().eval(), (torch.randint(0, 50, (2, 12)), torch.ones(2, 12, dtype=torch.long)), f"{out}/distilbert-op14.onnx", opset_version=14, input_names=["input_ids", "attention_mask"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "attention_mask", "hidden"))
# Masks given as inputs that differ from one query to the next (seeds 31, 32): nnenc-srcmask-op14.onnx,
# torch.nn.TransformerEncoder called with `mask=src_mask`, an `[S, S]` float input; mask4d-op14.onnx, attention that
# adds a 4-D `attention_mask` [B, 1, S, S] input (the extended mask code takes from its caller).
torch.manual_seed(31)
class Enc(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(50, 24)
        s.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=24, nhead=3, dim_feedforward=48, batch_first=True, dropout=0.0), num_layers=2)
    def forward(s, ids, src_mask):
        return s.enc(s.e(ids), mask=src_mask)
t = 12
m = torch.triu(torch.full((t, t), float('-inf')), 1)
torch.onnx.export(Enc().eval(), (torch.randint(0, 50, (2, t)), m), f"{out}/nnenc-srcmask-op14.onnx", opset_version=14, input_names=["input_ids", "src_mask"], output_names=["hidden"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "src_mask": {0: "sequence", 1: "sequence"}, "hidden": {0: "batch", 1: "sequence"}})
class Attn4D(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.d = d // h; s.e = nn.Embedding(50, d); s.qkv = nn.Linear(d, 3 * d); s.o = nn.Linear(d, d)
    def forward(s, ids, attention_mask):
        x = s.e(ids); b, t, c = x.shape
        q, k, v = s.qkv(x).view(b, t, 3, s.h, s.d).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2)) * s.d ** -0.5 + attention_mask
        return x + s.o((a.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c))
torch.manual_seed(32)
torch.onnx.export(Attn4D().eval(), (torch.randint(0, 50, (2, t)), torch.zeros(2, 1, t, t)), f"{out}/mask4d-op14.onnx", opset_version=14, input_names=["input_ids", "attention_mask"], output_names=["hidden"], dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 2: "sequence", 3: "sequence"}, "hidden": {0: "batch", 1: "sequence"}})
# decoder-with-past-op14.onnx (seed 36): optimum's decoder_with_past for an encoder-decoder (BART/Whisper/T5 style): self-attention with past K/V inputs and
# present outputs; cross-attention whose K and V are graph inputs (the encoder's cached keys and values), no projection.
class DecLayer(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.d = d // h
        s.q = nn.Linear(d, d); s.k = nn.Linear(d, d); s.v = nn.Linear(d, d); s.o = nn.Linear(d, d)
        s.cq = nn.Linear(d, d); s.co = nn.Linear(d, d)
    def split(s, x):
        b, t, _ = x.shape; return x.view(b, t, s.h, s.d).transpose(1, 2)
    def forward(s, x, pk, pv, ek, ev, emask):
        b, t, c = x.shape
        q = s.split(s.q(x)) * s.d ** -0.5
        k = torch.cat([pk, s.split(s.k(x))], 2); v = torch.cat([pv, s.split(s.v(x))], 2)
        a = (q @ k.transpose(-1, -2)).softmax(-1)
        x = x + s.o((a @ v).transpose(1, 2).reshape(b, t, c))
        cq = s.split(s.cq(x)) * s.d ** -0.5
        m = (1.0 - emask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        ca = (cq @ ek.transpose(-1, -2) + m).softmax(-1)
        x = x + s.co((ca @ ev).transpose(1, 2).reshape(b, t, c))
        return x, k, v
class Dec(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(50, 32); s.l = DecLayer()
    def forward(s, ids, pk, pv, ek, ev, emask):
        y, k, v = s.l(s.e(ids), pk, pv, ek, ev, emask)
        return y, k, v
torch.manual_seed(36)
b, past, src = 2, 5, 7
args = (torch.randint(0, 50, (b, 1)), torch.randn(b, 4, past, 8), torch.randn(b, 4, past, 8), torch.randn(b, 4, src, 8), torch.randn(b, 4, src, 8), torch.ones(b, src, dtype=torch.long))
torch.onnx.export(Dec().eval(), args, f"{out}/decoder-with-past-op14.onnx", opset_version=14,
  input_names=["input_ids", "past_key_values.0.decoder.key", "past_key_values.0.decoder.value", "past_key_values.0.encoder.key", "past_key_values.0.encoder.value", "encoder_attention_mask"],
  output_names=["logits", "present.0.decoder.key", "present.0.decoder.value"],
  dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "past_key_values.0.decoder.key": {0: "batch", 2: "past"}, "past_key_values.0.decoder.value": {0: "batch", 2: "past"},
                "past_key_values.0.encoder.key": {0: "batch", 2: "src"}, "past_key_values.0.encoder.value": {0: "batch", 2: "src"}, "encoder_attention_mask": {0: "batch", 1: "src"},
                "logits": {0: "batch", 1: "seq"}, "present.0.decoder.key": {0: "batch", 2: "total"}, "present.0.decoder.value": {0: "batch", 2: "total"}})
print("ok")

# Layouts that read as other head counts, sizes or lengths (seeds 41, 42, 45, 52; the models above stay as they were):
# gpt-bigcode-op14.onnx: GPT-BigCode's (StarCoder's) multi-query attention: one c_attn Linear cut into Q and KV, KV cut
# again into K and V (one head of 8), Q viewed as [B, S·heads, 8] for torch.baddbmm, scores [B, S, heads, S], a boolean
# causal buffer with torch.where.
class BigCodeAttn(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.hd = d // h; s.d = d
        s.c_attn = nn.Linear(d, d + 2 * s.hd); s.c_proj = nn.Linear(d, d)
    def forward(s, x, causal):
        b, t, _ = x.shape
        q, kv = s.c_attn(x).split((s.d, 2 * s.hd), dim=2)
        k, v = kv.split((s.hd, s.hd), dim=-1)
        w = torch.baddbmm(torch.empty(b, t * s.h, t, dtype=x.dtype), q.reshape(b, t * s.h, s.hd), k.transpose(1, 2), beta=0, alpha=1 / math.sqrt(s.hd)).view(b, t, s.h, t)
        w = F.softmax(torch.where(causal.view(1, t, 1, t), w, torch.full([], torch.finfo(x.dtype).min)), dim=-1)
        return x + s.c_proj(torch.bmm(w.view(b, t * s.h, t), v).view(b, t, s.d))
class BigCode(nn.Module):
    def __init__(s):
        super().__init__(); s.e = nn.Embedding(50, 32); s.l = nn.ModuleList([BigCodeAttn(), BigCodeAttn()])
        s.register_buffer("bias", torch.tril(torch.ones(64, 64, dtype=torch.bool)))
    def forward(s, ids):
        x = s.e(ids); t = ids.shape[1]
        for l in s.l: x = l(x, s.bias[:t, :t])
        return x
torch.manual_seed(41)
torch.onnx.export(BigCode().eval(), torch.randint(0, 50, (1, 12)), f"{out}/gpt-bigcode-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))

# levit-op14.onnx: LeViT's attention on a fixed 4×4 patch grid: Linear + BatchNorm projections (not read), keys of 8 and
# values of 16 per head (4 heads), a learned bias per head and patch offset, Hardswish before the output projection.
class LinBN(nn.Module):
    def __init__(s, a, b):
        super().__init__(); s.l = nn.Linear(a, b, bias=False); s.bn = nn.BatchNorm1d(b)
        s.bn.running_mean.uniform_(-0.1, 0.1); s.bn.running_var.uniform_(0.5, 1.5)
    def forward(s, x): return s.bn(s.l(x).flatten(0, 1)).reshape(x.shape[0], x.shape[1], -1)
class LeViTAttn(nn.Module):
    def __init__(s, d=32, h=4, kd=8, res=4):
        super().__init__(); s.h, s.kd, s.vd = h, kd, 2 * kd
        s.qkv = LinBN(d, h * (2 * kd + s.vd)); s.proj = nn.Sequential(nn.Hardswish(), LinBN(h * s.vd, d))
        pts = [(i, j) for i in range(res) for j in range(res)]
        off = sorted({(abs(a[0] - b[0]), abs(a[1] - b[1])) for a in pts for b in pts})
        s.ab = nn.Parameter(torch.randn(h, len(off)) * 0.1)
        s.register_buffer("abi", torch.LongTensor([off.index((abs(a[0] - b[0]), abs(a[1] - b[1]))) for a in pts for b in pts]).view(res * res, res * res))
    def forward(s, x):
        b, n, _ = x.shape
        q, k, v = s.qkv(x).view(b, n, s.h, -1).split([s.kd, s.kd, s.vd], dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        a = (q @ k.transpose(-2, -1) * s.kd ** -0.5 + s.ab[:, s.abi]).softmax(-1)
        return x + s.proj((a @ v).transpose(1, 2).reshape(b, n, s.h * s.vd))
class LeViT(nn.Module):
    def __init__(s):
        super().__init__(); s.patch = nn.Conv2d(3, 32, 4, 4); s.a = nn.Sequential(LeViTAttn(), LeViTAttn()); s.head = nn.Linear(32, 10)
    def forward(s, img): return s.head(s.a(s.patch(img).flatten(2).transpose(1, 2)).mean(1))
torch.manual_seed(42)
torch.onnx.export(LeViT().eval(), torch.randn(1, 3, 16, 16), f"{out}/levit-op14.onnx", opset_version=14, input_names=["pixel_values"], output_names=["logits"])

# gpt2-legacy-op11.onnx: GPT-2 as transformers wrote it before version 3, at opset 11: K split to [B, heads, 8, S]
# directly, the scores divided by √8, the causal buffer sliced by the scores' own sizes (`w.size(-2)`, `w.size(-1)`) and
# applied twice, `w * b - 1e4 * (1 - b)`.
class OldGPT2Attn(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.c_attn = nn.Linear(d, 3 * d); s.c_proj = nn.Linear(d, d)
        s.register_buffer("bias", torch.tril(torch.ones(32, 32)).view(1, 1, 32, 32))
    def split(s, x, k=False):
        x = x.view(*x.size()[:-1], s.h, x.size(-1) // s.h)
        return x.permute(0, 2, 3, 1) if k else x.permute(0, 2, 1, 3)
    def forward(s, x):
        q, k, v = s.c_attn(x).split(x.size(-1), dim=2)
        q, k, v = s.split(q), s.split(k, True), s.split(v)
        w = torch.matmul(q, k) / math.sqrt(v.size(-1))
        nd, ns = w.size(-2), w.size(-1)
        b = s.bias[:, :, ns - nd:ns, :ns]
        a = torch.matmul(nn.Softmax(dim=-1)(w * b - 1e4 * (1 - b)), v).permute(0, 2, 1, 3).contiguous()
        return x + s.c_proj(a.view(*a.size()[:-2], a.size(-2) * a.size(-1)))
torch.manual_seed(45)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), OldGPT2Attn(), OldGPT2Attn()).eval(), torch.randint(0, 50, (1, 12)), f"{out}/gpt2-legacy-op11.onnx", opset_version=11, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))

# nystrom-op14.onnx: Nyströmformer's three softmaxes over 16 fixed tokens and 4 landmarks (segment means of Q and K):
# only softmax(landmarks · Kᵀ) reaches a product with V; its queries are the landmarks, not the tokens.
class Nystrom(nn.Module):
    def __init__(s, d=32, h=4, m=4):
        super().__init__(); s.h = h; s.hd = d // h; s.m = m; s.qkv = nn.Linear(d, 3 * d); s.o = nn.Linear(d, d)
    def forward(s, x):
        b, t, _ = x.shape
        q, k, v = s.qkv(x).view(b, t, 3, s.h, s.hd).permute(2, 0, 3, 1, 4)
        q = q * s.hd ** -0.5
        ql = q.reshape(b, s.h, s.m, t // s.m, s.hd).mean(-2); kl = k.reshape(b, s.h, s.m, t // s.m, s.hd).mean(-2)
        k1, k2, k3 = (F.softmax(a @ c.transpose(-1, -2), -1) for a, c in ((q, kl), (ql, kl), (ql, k)))
        return x + s.o(((k1 @ k2) @ (k3 @ v)).transpose(1, 2).reshape(b, t, -1))
torch.manual_seed(52)
torch.onnx.export(Nystrom().eval(), torch.randn(1, 16, 32), f"{out}/nystrom-op14.onnx", opset_version=14, input_names=["x"], output_names=["y"])
print("ok")

# wav2vec-bmm-op14.onnx (seed 62): an audio encoder over raw samples of open length (wav2vec 2.0's layout): strided
# convolutions cut the samples to frames, a grouped positional convolution is added, then two attention layers as
# transformers' BART family wrote them until 2024 (Q scaled after its projection, K without bias, heads folded into the
# batch for torch.bmm: `view(bsz * heads, -1, head_dim)`).
class BmmAttn(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.hd = d // h; s.scaling = s.hd ** -0.5
        s.q_proj = nn.Linear(d, d); s.k_proj = nn.Linear(d, d, bias=False); s.v_proj = nn.Linear(d, d); s.out_proj = nn.Linear(d, d)
    def forward(s, x):
        b, t, c = x.shape
        heads = lambda y: y.view(b, t, s.h, s.hd).transpose(1, 2).reshape(b * s.h, t, s.hd)
        w = torch.bmm(heads(s.q_proj(x) * s.scaling), heads(s.k_proj(x)).transpose(1, 2))
        o = torch.bmm(F.softmax(w, -1), heads(s.v_proj(x))).view(b, s.h, t, s.hd).transpose(1, 2).reshape(b, t, c)
        return s.out_proj(o)
class Wav2Vec(nn.Module):
    def __init__(s):
        super().__init__(); s.fe = nn.Sequential(nn.Conv1d(1, 32, 10, 5), nn.GELU(), nn.Conv1d(32, 32, 3, 2), nn.GELU())
        s.posc = nn.Conv1d(32, 32, 5, padding=2, groups=4); s.l = nn.ModuleList([BmmAttn(), BmmAttn()])
    def forward(s, input_values):
        x = s.fe(input_values[:, None]).transpose(1, 2)
        x = x + F.gelu(s.posc(x.transpose(1, 2))).transpose(1, 2)
        for l in s.l: x = x + l(x)
        return x
torch.manual_seed(62)
torch.onnx.export(Wav2Vec().eval(), torch.randn(1, 400), f"{out}/wav2vec-bmm-op14.onnx", opset_version=14, input_names=["input_values"], output_names=["last_hidden_state"], dynamic_axes={"input_values": {0: "batch", 1: "samples"}, "last_hidden_state": {0: "batch", 1: "frames"}})
print("ok")

# mla-latent-op14.onnx (seed 72): DeepSeek-V2's multi-head latent attention, simplified (no low-rank Q): K and V are
# projected from a 16-wide latent of the hidden states, K = [8 per head | 4 rotary dims shared by the heads], Q likewise
# 12 per head, V 8 per head; causal.
def rot_half(x): x1, x2 = x.chunk(2, -1); return torch.cat((-x2, x1), -1)
def rope(t, hd):
    f = torch.outer(torch.arange(t).float(), 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))); e = torch.cat((f, f), -1)
    return e.cos()[None, None], e.sin()[None, None]
class MLA(nn.Module):
    def __init__(s, d=32, h=4, nope=8, rp=4, vd=8, r=16):
        super().__init__(); s.h, s.nope, s.rp, s.vd, s.r = h, nope, rp, vd, r
        s.q = nn.Linear(d, h * (nope + rp), bias=False); s.kv_a = nn.Linear(d, r + rp, bias=False); s.kv_b = nn.Linear(r, h * (nope + vd), bias=False); s.o = nn.Linear(h * vd, d, bias=False)
    def forward(s, x):
        b, t, _ = x.shape
        q_nope, q_pe = s.q(x).view(b, t, s.h, s.nope + s.rp).transpose(1, 2).split([s.nope, s.rp], -1)
        ckv, k_pe = s.kv_a(x).split([s.r, s.rp], -1); k_pe = k_pe.view(b, t, 1, s.rp).transpose(1, 2)
        k_nope, v = s.kv_b(ckv).view(b, t, s.h, s.nope + s.vd).transpose(1, 2).split([s.nope, s.vd], -1)
        cos, sin = rope(t, s.rp); q_pe = q_pe * cos + rot_half(q_pe) * sin; k_pe = k_pe * cos + rot_half(k_pe) * sin
        q = torch.cat([q_nope, q_pe], -1); k = torch.cat([k_nope, k_pe.expand(b, s.h, t, s.rp)], -1)
        w = torch.matmul(q, k.transpose(2, 3)) * (s.nope + s.rp) ** -0.5 + torch.triu(torch.full((t, t), float("-inf")), 1)
        return x + s.o(torch.matmul(w.softmax(-1), v).transpose(1, 2).reshape(b, t, -1))
torch.manual_seed(72)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), MLA(), MLA()).eval(), torch.randint(0, 50, (1, 12)), f"{out}/mla-latent-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))
print("ok")

# diffusers-sdpa-op14.onnx (seed 91): a Stable Diffusion transformer block as diffusers' AttnProcessor2_0 writes it, with
# scaled_dot_product_attention decomposed as PyTorch 2's exporter writes it (Q and K each scaled by the fourth root of the
# head size); latents [B, 32, H, W] of open height and width; self- and cross-attention (to `encoder_hidden_states`,
# 24 features); the head size read at run time as `key.shape[-1] // heads`.
class Attn2(nn.Module):
    def __init__(s, c=32, heads=4, cross=None):
        super().__init__(); s.heads = heads
        s.to_q = nn.Linear(c, c, bias=False); s.to_k = nn.Linear(cross or c, c, bias=False); s.to_v = nn.Linear(cross or c, c, bias=False); s.to_out = nn.Linear(c, c)
    def forward(s, x, ctx=None):
        b = x.shape[0]; ctx = x if ctx is None else ctx
        q, k, v = s.to_q(x), s.to_k(ctx), s.to_v(ctx)
        hd = k.shape[-1] // s.heads
        q, k, v = (y.view(b, -1, s.heads, hd).transpose(1, 2) for y in (q, k, v))
        sc = 1 / math.sqrt(math.sqrt(q.size(-1)))
        o = ((q * sc) @ (k.transpose(-2, -1) * sc)).softmax(-1) @ v
        return s.to_out(o.transpose(1, 2).reshape(b, -1, s.heads * hd))
class SDBlock(nn.Module):
    def __init__(s):
        super().__init__(); s.norm = nn.GroupNorm(8, 32); s.proj_in = nn.Conv2d(32, 32, 1); s.a1 = Attn2(); s.a2 = Attn2(cross=24); s.proj_out = nn.Conv2d(32, 32, 1)
    def forward(s, latents, encoder_hidden_states):
        b, c, h, w = latents.shape
        x = s.proj_in(s.norm(latents)).permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = x + s.a1(x); x = x + s.a2(x, encoder_hidden_states)
        return latents + s.proj_out(x.reshape(b, h, w, c).permute(0, 3, 1, 2))
torch.manual_seed(91)
torch.onnx.export(SDBlock().eval(), (torch.randn(1, 32, 8, 8), torch.randn(1, 7, 24)), f"{out}/diffusers-sdpa-op14.onnx", opset_version=14, input_names=["sample", "encoder_hidden_states"], output_names=["out"],
  dynamic_axes={"sample": {0: "batch", 2: "height", 3: "width"}, "encoder_hidden_states": {0: "batch", 1: "sequence"}, "out": {0: "batch", 2: "height", 3: "width"}})
print("ok")

# mqa-rope-split-op14.onnx (seed 96): GPT-BigCode's two cuts of c_attn with a rotary embedding applied to the one K head
# as it is cut, [B, S, 8], its halves taken by a Split of the last axis (as K's own cut is): the halves are no third cut.
def rot_half_split(x): x1, x2 = x.split(x.shape[-1] // 2, dim=-1); return torch.cat((-x2, x1), -1)
class MQARope(nn.Module):
    def __init__(s, d=32, h=4):
        super().__init__(); s.h = h; s.hd = d // h; s.d = d
        s.c_attn = nn.Linear(d, d + 2 * s.hd); s.c_proj = nn.Linear(d, d)
    def forward(s, x):
        b, t, _ = x.shape
        q, kv = s.c_attn(x).split((s.d, 2 * s.hd), dim=2)
        k, v = kv.split((s.hd, s.hd), dim=-1)
        f = torch.outer(torch.arange(t).float(), 1.0 / (10000 ** (torch.arange(0, s.hd, 2).float() / s.hd))); e = torch.cat((f, f), -1)
        k = k * e.cos() + rot_half_split(k) * e.sin()
        w = (q.view(b, t, s.h, s.hd).transpose(1, 2) @ k[:, None].transpose(-1, -2)) / math.sqrt(s.hd) + torch.triu(torch.full((t, t), float("-inf")), 1)
        return x + s.c_proj((w.softmax(-1) @ v[:, None]).transpose(1, 2).reshape(b, t, s.d))
torch.manual_seed(96)
torch.onnx.export(nn.Sequential(nn.Embedding(50, 32), MQARope(), MQARope()).eval(), torch.randint(0, 50, (1, 12)), f"{out}/mqa-rope-split-op14.onnx", opset_version=14, input_names=["input_ids"], output_names=["hidden"], dynamic_axes=dyn("input_ids", "hidden"))
print("ok")

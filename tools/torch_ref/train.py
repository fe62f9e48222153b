"""Training objective and optimizer of docs/training-spec.md (autograd for the gradients).

L = L_main + (lambda / D) sum_k L^k + alpha * sum_layers mean_b sum_i f_i P_i
then global-norm clipping, AdamW (torch semantics), and the aux-loss-free bias update.
"""
import torch
import torch.nn.functional as F

from model import Gate


def balance_loss(rec, cfg):
    """Sequence-wise balance loss of one MoE layer, averaged over the batch.
    f_i = N_r / (K_r T) * #{t: i selected} (no gradient), P_i = mean_t s_{i,t} / sum_j s_{j,t}."""
    s, idx = rec["scores"], rec["idx"]                     # [B, T, E], [B, T, K]
    B, T, E = s.shape
    K = idx.shape[-1]
    count = torch.zeros(B, E, dtype=s.dtype).scatter_add_(1, idx.reshape(B, -1), torch.ones(B, T * K, dtype=s.dtype))
    f = count * (E / (K * T))
    P = (s / s.sum(-1, keepdim=True)).mean(1)
    return (f * P).sum(-1).mean()


def _wide(x):
    """Loss math in at least float32 (under bf16 autocast the logits come out bf16)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def compute_loss(model, tokens, alpha, lam):
    """tokens [B, T+1] -> dict of losses (tensors) and the router records of every MoE layer."""
    cfg = model.cfg
    T = tokens.shape[1] - 1
    x, y = tokens[:, :T], tokens[:, 1:]
    log = []
    logits, h = model(x, log=log)
    l_main = F.cross_entropy(_wide(logits).reshape(-1, logits.shape[-1]), y.reshape(-1))
    D = len(model.mtp_layers())
    mtp = []
    for k in range(1, D + 1):
        emb = model.model.embed_tokens(tokens[:, k:T])        # e_i = Emb(x_{i+k}), i = 0..T-1-k
        lk, h = model.mtp_forward(k, emb, h[:, :T - k], log=log)
        mtp.append(F.cross_entropy(_wide(lk).reshape(-1, lk.shape[-1]), tokens[:, k + 1:T + 1].reshape(-1)))
    l_mtp = torch.stack(mtp).sum() / D if D else torch.zeros((), dtype=l_main.dtype)
    l_aux = alpha * sum(balance_loss(r, cfg) for r in log) if log else torch.zeros((), dtype=l_main.dtype)
    total = l_main + lam * l_mtp + l_aux
    return {"total": total, "main": l_main, "mtp": l_mtp, "aux": l_aux}, log


def make_optimizer(model, lr, wd, betas=(0.9, 0.95), eps=1e-8):
    """AdamW; weight decay on matrices and embeddings (dim >= 2) only."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": other, "weight_decay": 0.0}],
                             lr=lr, betas=betas, eps=eps)


def expert_loads(log, cfg):
    """layer -> load_i = number of (token, slot) selections of expert i."""
    return {r["layer"]: torch.bincount(r["idx"].flatten(), minlength=cfg.n_routed_experts) for r in log}


def update_bias(model, loads, gamma):
    """bias_i += gamma * sign(mean - load_i) for every MoE layer with a correction bias (float32)."""
    gates = {m.i: m.mlp.gate for m in model.model.layers if isinstance(getattr(m.mlp, "gate", None), Gate)}
    n_zero = 0
    for layer, load in loads.items():
        b = gates[layer].e_score_correction_bias
        if b is None:
            continue
        diff = load.sum().double() / load.numel() - load.double()
        n_zero += int((diff == 0).sum())
        b += torch.sign(diff).float() * gamma
    return n_zero


def backward(model, loss):
    """loss.backward(); a parameter that got no gradient (an expert no token chose) gets a zero gradient,
    so weight decay and the moment updates apply to every parameter at every step."""
    loss.backward()
    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)


def train_step(model, opt, tokens, alpha, lam, gamma, max_norm):
    """One step: loss, backward, clip, AdamW, bias update. Returns (losses as floats, grad norm, log)."""
    opt.zero_grad(set_to_none=True)
    losses, log = compute_loss(model, tokens, alpha, lam)
    backward(model, losses["total"])
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    with torch.no_grad():
        update_bias(model, expert_loads(log, model.cfg), gamma)
    return {k: v.item() for k, v in losses.items()}, norm.item(), log

"""An SAE on a base CLIP, behind the Representation protocol.

Features are the SAE code of the base model's activations at the SAE's hook site. For
SAEs on the final embeddings the text tower feeds the same SAE (image and text embeddings
share CLIP's space), so multimodality and vocabulary labels apply. Zero-shot runs on the
reconstruction: the decoded embedding (final-embedding SAEs) or the image embedding
obtained by splicing the reconstructed residual back into the ViT (residual-stream SAEs).
"""

from __future__ import annotations

import torch

from interpbench.adapters.base import RepresentationMeta
from interpbench.adapters.openclip_dense import ClipRepresentation
from interpbench.adapters.sae_canonical import CanonicalSAE


class SAERepresentation:
    def __init__(self, base: ClipRepresentation, sae: CanonicalSAE, meta: RepresentationMeta):
        from interpbench.adapters import hooks

        self.base, self.sae, self.meta = base, sae.eval(), meta
        self.transform = base.transform
        self.hook = sae.settings.hook
        hooks.check_width(base.model, self.hook, sae)
        self.device = torch.device("cpu")

    @property
    def n_features(self) -> int:
        return self.sae.n_latents

    def to(self, device):
        self.device = torch.device(device)
        self.base.to(device)
        self.sae.to(device)
        return self

    def _final_embedding_site(self) -> bool:
        return self.hook.site in ("image_embed", "text_embed")

    @torch.inference_mode()
    def sae_input_images(self, images):
        from interpbench.adapters import hooks

        if self._final_embedding_site():
            return self.base.encode_image_embedding(images)
        return hooks.activations_at(self.base.model, images.to(self.device), self.hook)

    @staticmethod
    def pool(z):
        """Per-token codes [B, T, F] -> per-image features [B, F]: a latent's strongest token
        (max pooling, as for Prisma's spatial-max SAEs). CLS / embedding codes pass through."""
        return z.amax(dim=1) if z.ndim == 3 else z

    @torch.inference_mode()
    def encode_image_features(self, images):
        return self.pool(self.sae.encode(self.sae_input_images(images)))

    @torch.inference_mode()
    def sae_outputs(self, images) -> dict:
        """What the reconstruction metrics need: SAE inputs and reconstructions as rows [N, d]
        (one row per image, or per token for patch/all hooks) and pooled features [B, F].
        The per-row normalisations (layer_norm, constant_norm_rescale) are undone with each
        row's own input, as the libraries do."""
        x = self.sae_input_images(images)
        z = self.sae.encode(x)
        recon = self.sae.decode(z, x)
        out = {"sae_input": x.reshape(-1, x.shape[-1]), "sae_recon": recon.reshape(-1, recon.shape[-1]),
               "features": self.pool(z)}
        if self._final_embedding_site():
            # At the final embedding the SAE's input is the image embedding and its reconstruction
            # is the embedding with the SAE in place: one tower forward gives all of it (a separate
            # encode_image_embedding and encode_image_reconstructed would run the tower twice more).
            out.update(embedding=x, reconstructed=recon)
        return out

    @torch.inference_mode()
    def encode_text_features(self, texts):
        if not self._final_embedding_site():
            raise NotImplementedError(f"{self.meta.name}: an SAE on the vision residual stream has no text side")
        return self.sae.encode(self.base.encode_text_embedding(texts))

    def encode_image_embedding(self, images):
        return self.base.encode_image_embedding(images)

    def encode_text_embedding(self, texts):
        return self.base.encode_text_embedding(texts)

    @torch.inference_mode()
    def reconstruct(self, features):
        """Embedding-space reconstruction from features; None where that is not defined (residual
        hooks, or per-row normalisations that need the input: use sae_outputs)."""
        if not self._final_embedding_site() or self.sae.settings.input_norm in ("layer_norm", "constant_norm_rescale"):
            return None
        return self.sae.decode(features)

    @torch.inference_mode()
    def encode_image_reconstructed(self, images):
        """The image embedding the model would give with the SAE's reconstruction in place."""
        from interpbench.adapters import hooks

        if self._final_embedding_site():
            return self.sae.decode(self.encode_image_features(images))
        return hooks.encode_image_with_replacement(self.base.model, images.to(self.device), self.hook,
                                                   lambda x: self.sae(x)[1])


def sae_meta(spec_raw: str, base: ClipRepresentation, sae: CanonicalSAE, source: str, fingerprint: str,
             display: str | None = None) -> RepresentationMeta:
    s = sae.settings
    act = f"top-{s.k}" if s.activation == "topk" else s.activation
    where = s.hook.site if s.hook.layer is None else f"{s.hook.site}@{s.hook.layer}/{s.hook.tokens}"
    return RepresentationMeta(
        name=display or spec_raw, spec=spec_raw, kind="sae", source=source, base_model=base.meta.spec,
        sparsity=f"post-hoc SAE ({s.source_format}, {act}, {sae.n_latents} latents at {where})",
        n_features=sae.n_latents, embed_dim=base.meta.embed_dim,
        has_text=s.hook.site in ("image_embed", "text_embed"),
        fingerprint=f"{fingerprint}+{base.meta.fingerprint}",
        extra={"hook": {"site": s.hook.site, "layer": s.hook.layer, "tokens": s.hook.tokens},
               "d_in": sae.d_in, "format": s.source_format,
               "token_pooling": "max" if s.hook.site in ("resid_post", "mlp_out") and s.hook.tokens != "cls" else None,
               "provenance": {k: v for k, v in sae.provenance.items() if k != "files"}},
        recipe=sae.provenance.get("recipe"), train_seed=sae.provenance.get("train_seed"))

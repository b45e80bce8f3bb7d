"""Direct-effect decomposition of CLIP ViT image embeddings and TextSpan (Gandelsman et al., ICLR 2024).

See the README section "Decomposing CLIP into heads (TextSpan)". Core API:
`decompose(model, images) -> Decomposition`; `text_span`; `ComponentMeans` + `ablate`;
segmentation maps and metrics; head-role probes.
"""

from interpbench.decomposition.ablation import (
    ComponentMeans,
    ablate,
    ablation_sweep,
    accuracy,
    class_directions,
    encode_texts,
    group_accuracy,
)
from interpbench.decomposition.core import Decomposition, decompose, vision_tower
from interpbench.decomposition.textspan import (
    TextSpanResult,
    duplicate_texts,
    reconstruction_accuracy,
    text_span,
    text_span_heads,
)

__all__ = [
    "ComponentMeans", "Decomposition", "TextSpanResult", "ablate", "ablation_sweep", "accuracy",
    "class_directions", "decompose", "duplicate_texts", "encode_texts", "group_accuracy",
    "reconstruction_accuracy", "text_span", "text_span_heads", "vision_tower",
]

"""Zero-shot accuracy through clip-benchmark's own evaluate, checked against a direct computation."""

import numpy as np
import pytest
import torch

from interpbench.metrics.zeroshot import EncoderView, PassthroughTokenizer, zeroshot_accuracy


class _Embeddings(torch.utils.data.Dataset):
    def __init__(self, emb, target, classes):
        self.emb, self.target, self.classes = emb, target, classes

    def __len__(self):
        return len(self.target)

    def __getitem__(self, i):
        return self.emb[i], int(self.target[i])


def _text_encoder(classes, class_emb, template_shift):
    """Each prompt maps to its class embedding plus a template-specific shift."""
    def encode(texts):
        out = []
        for t in texts:
            c = next(i for i, name in enumerate(classes) if t.endswith(name))
            out.append(class_emb[c] + template_shift[0 if t.startswith("a photo") else 1])
        return torch.stack(out)
    return encode


@pytest.mark.parametrize("n_classes", [3, 6])
def test_accuracy_matches_direct_cosine_classifier(n_classes):
    g = torch.Generator().manual_seed(n_classes)
    d, n = 8, 90
    classes = [f"class{i}" for i in range(n_classes)]
    class_emb = torch.randn(n_classes, d, generator=g)
    shift = torch.randn(2, d, generator=g) * 0.3
    templates = ["a photo of {c}", "art of {c}"]
    target = torch.randint(0, n_classes, (n,), generator=g)
    images = class_emb[target] + torch.randn(n, d, generator=g) * 1.5
    view = EncoderView(lambda x: x, _text_encoder(classes, class_emb, shift))
    dl = torch.utils.data.DataLoader(_Embeddings(images, target, classes), batch_size=32)
    got = zeroshot_accuracy(view, PassthroughTokenizer(), dl, classes, templates)
    # independent: CLIP's prompt ensembling (mean of unit template embeddings), cosine argmax
    unit = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
    clf = unit(torch.stack([unit(torch.stack([class_emb[c] + shift[0], class_emb[c] + shift[1]])).mean(0)
                            for c in range(n_classes)]))
    pred = (unit(images) @ clf.T).argmax(1)
    assert got["acc1"] == pytest.approx(int((pred == target).sum()) / n, abs=1e-12)
    recalls = [int((pred[target == c] == c).sum()) / int((target == c).sum()) for c in range(n_classes) if (target == c).any()]
    assert got["mean_per_class_recall"] == pytest.approx(np.mean(recalls), abs=1e-9)

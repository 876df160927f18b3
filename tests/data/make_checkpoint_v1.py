"""How tests/data/checkpoint_v1_*.npz were written: by chainrule at commit dcd72f7 (before a
checkpoint recorded the epoch its call started from and a digest of every data entry), a fit
of 8 epochs interrupted after epoch 3 (full batch) or 4 (mini-batches). Kept to show what they
hold; tests/test_checkpoint_compat.py resumes them with the current code."""
import numpy as np, sys
from chainrule import Network
rng = np.random.default_rng(0)
X = rng.standard_normal((5, 300)); Y = (X[0] > 0).astype(float)[None]
for mb, name in ((None, "full"), (64, "mb")):
    net = Network([5, 8, 1], seed=1, backend="numpy")
    class Stop(Exception): pass
    def cb(net, epoch, logs):
        if epoch == 3: raise KeyboardInterrupt
    try:
        net.fit(X, Y, epochs=8, learning_rate=0.1, optimizer="adam", mini_batch_size=mb, cost_every=1,
                checkpoint=f"{name}.npz", callbacks=[cb], progress=False)
    except KeyboardInterrupt:
        print("interrupted", name, net.epochs_trained_)
    ref = Network([5, 8, 1], seed=1, backend="numpy")
    ref.fit(X, Y, epochs=8, learning_rate=0.1, optimizer="adam", mini_batch_size=mb, cost_every=1, progress=False)
    np.save(f"{name}_W1.npy", ref.parameters["W1"])

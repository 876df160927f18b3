"""Digits (scikit-learn's bundled 8x8 images): test accuracy and training time per backend.

    python benchmarks/training_digits.py [--repeats 5] [--threads 1]

Network [64, 64, 10] (ReLU, softmax), Adam lr 0.01, mini-batches of 64, 30 epochs, seed 0,
on 1347 training / 450 test images (a seeded split). The backends run interleaved, each
``repeats`` times; the medians are printed, with the BLAS that ran (threadpoolctl).
Not an asv benchmark: everything runs under ``__main__``.
"""

import argparse
import statistics
import time


def run(backend, X_train, y_train, X_test, y_test):
    from chainrule import Network

    start = time.perf_counter()
    net = Network([64, 64, 10], hidden="relu", output="softmax", seed=0, backend=backend)
    net.fit(X_train.T, y_train, epochs=30, learning_rate=0.01, optimizer="adam",
            mini_batch_size=64, progress=False)
    seconds = time.perf_counter() - start
    return seconds, net.score(X_test.T, y_test)


def main():
    import numpy as np
    from sklearn.datasets import load_digits
    from threadpoolctl import threadpool_info, threadpool_limits

    import chainrule

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order] / 16.0, y[order]
    X_train, y_train, X_test, y_test = X[:1347], y[:1347], X[1347:], y[1347:]
    backends = chainrule.available_backends()
    times = {b: [] for b in backends}
    accuracy = {}
    with threadpool_limits(args.threads):
        for b in backends:  # warm-up (JIT compilation, first BLAS calls)
            run(b, X_train[:128], y_train[:128], X_test, y_test)
        for _ in range(args.repeats):
            for b in backends:
                seconds, acc = run(b, X_train, y_train, X_test, y_test)
                times[b].append(seconds)
                accuracy[b] = acc
    blas = sorted({f"{i['internal_api']} {i.get('version')} ({i['prefix']})"
                   for i in threadpool_info() if i["user_api"] == "blas"})
    print(f"BLAS: {', '.join(blas)}; {args.threads} thread(s); {args.repeats} repeats")
    print(f"{'backend':8s} {'test accuracy':>14s} {'median s':>9s} {'min s':>7s}")
    for b in backends:
        print(f"{b:8s} {100 * accuracy[b]:13.2f}% {statistics.median(times[b]):9.3f} "
              f"{min(times[b]):7.3f}")


if __name__ == "__main__":
    main()

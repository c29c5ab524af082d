"""Write wine.npz: the UCI wine table (178 wines, 13 features, 3 cultivars) that ships with scikit-learn,
standardized and split 70/30 stratified, in the layout tunedeck reads (x_train, y_train, x_test, y_test).

    python examples/make_wine_npz.py [wine.npz]
"""

import sys

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

x, y = load_wine(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
scaler = StandardScaler().fit(x_train)
path = sys.argv[1] if len(sys.argv) > 1 else "wine.npz"
np.savez(path, x_train=scaler.transform(x_train).astype("float32"), y_train=y_train,
         x_test=scaler.transform(x_test).astype("float32"), y_test=y_test)
print(f"wrote {path}: {len(y_train)} train, {len(y_test)} test, {x.shape[1]} features, 3 classes")

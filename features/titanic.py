"""Titanic feature builder: the well-known engineered features, learned on the training fold only."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# rare honorifics folded into the four common ones (Kaggle-standard grouping)
TITLE_MAP = {"Mlle": "Miss", "Ms": "Miss", "Mme": "Mrs", "Lady": "Rare", "Countess": "Rare",
             "the Countess": "Rare", "Capt": "Rare", "Col": "Rare", "Don": "Rare", "Dona": "Rare",
             "Dr": "Rare", "Major": "Rare", "Rev": "Rare", "Sir": "Rare", "Jonkheer": "Rare"}

NUMERIC = ["Pclass", "Age", "SibSp", "Parch", "Fare", "FamilySize", "Alone", "TicketGroup",
           "FarePerPerson", "IsChild", "CabinKnown", "AgeKnown"]
CATEGORICAL = ["Sex", "Embarked", "Title", "Deck", "PclassSex"]
# travelling groups, target-encoded (who of the group survived): WCGroup is the women-and-children
# group of the strongest public solutions (a family's women and boys, who lived or died together;
# every man in one "man" group), keyed by surname, class, ticket but its last digit, fare, port
GROUPS = ["Surname", "Ticket", "WCGroup"]


def _title(name: pd.Series) -> pd.Series:
    title = name.astype(str).str.extract(r",\s*([^.]+)\.", expand=False).str.strip()
    return title.replace(TITLE_MAP).fillna("Rare")


class TitanicFeatures(TransformerMixin, BaseEstimator):
    """Raw Kaggle columns -> engineered frame (columns NUMERIC + CATEGORICAL + GROUPS).

    Learned at fit: median age per title, median fare per class, ticket group sizes.
    A ticket unseen at fit counts as a group of one; a title unseen at fit takes the
    overall median age.
    """

    def fit(self, X: pd.DataFrame, y=None):
        title = _title(X["Name"])
        self.age_by_title_ = X["Age"].groupby(title).median().to_dict()
        self.age_median_ = float(X["Age"].median()) if X["Age"].notna().any() else 30.0
        self.fare_by_class_ = X["Fare"].groupby(X["Pclass"]).median().to_dict()
        self.fare_median_ = float(X["Fare"].median()) if X["Fare"].notna().any() else 14.0
        self.ticket_counts_ = X["Ticket"].astype(str).value_counts().to_dict()
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=X.index)
        title = _title(X["Name"])
        age_fill = title.map(self.age_by_title_).astype(float).fillna(self.age_median_)
        fare_fill = X["Pclass"].map(self.fare_by_class_).astype(float).fillna(self.fare_median_)
        out["Pclass"] = X["Pclass"].astype(float)
        out["AgeKnown"] = X["Age"].notna().astype(float)
        out["Age"] = X["Age"].fillna(age_fill)
        out["SibSp"] = X["SibSp"].astype(float)
        out["Parch"] = X["Parch"].astype(float)
        out["Fare"] = np.log1p(X["Fare"].fillna(fare_fill).clip(lower=0))
        out["FamilySize"] = X["SibSp"] + X["Parch"] + 1
        out["Alone"] = (out["FamilySize"] == 1).astype(float)
        out["TicketGroup"] = X["Ticket"].astype(str).map(self.ticket_counts_).fillna(1).astype(float)
        out["FarePerPerson"] = np.log1p(X["Fare"].fillna(fare_fill).clip(lower=0) / out["TicketGroup"])
        out["IsChild"] = (out["Age"] < 14).astype(float)
        out["CabinKnown"] = X["Cabin"].notna().astype(float)
        out["Sex"] = X["Sex"].astype(str)
        out["Embarked"] = X["Embarked"].fillna("S").astype(str)
        out["Title"] = title
        out["Deck"] = X["Cabin"].astype(str).str[0].where(X["Cabin"].notna(), "U")
        out["PclassSex"] = X["Pclass"].astype(str) + "_" + out["Sex"]
        # partition, not split().str[0]: the latter is a float column when every name is missing
        out["Surname"] = X["Name"].astype(str).str.partition(",")[0].str.strip()
        out["Ticket"] = X["Ticket"].astype(str)
        woman_or_boy = (out["Sex"] == "female") | (title == "Master")
        family = (out["Surname"] + "|" + X["Pclass"].astype(str) + "|" + out["Ticket"].str[:-1] + "|"
                  + X["Fare"].round(2).astype(str) + "|" + out["Embarked"])
        out["WCGroup"] = family.where(woman_or_boy, "man")
        return out[NUMERIC + CATEGORICAL + GROUPS]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(NUMERIC + CATEGORICAL + GROUPS, dtype=object)

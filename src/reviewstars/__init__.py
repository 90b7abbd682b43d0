"""reviewstars: learn to read a review and predict its star rating (1 to 5)."""

__version__ = "0.1.0"

#: Stars are what users see; labels 0..4 are what models and `yelp_review_full` use.
NUM_CLASSES = 5
STARS = (1, 2, 3, 4, 5)
LABEL_NAMES = ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")

"""The application layer: what ``train.py``, ``validate.py`` and ``show.py`` do, run directories and their
lookup across trackers, config resolvers and console tables. Nothing below it imports from it."""

"""reviewstars inside other engines: `ray` (Ray Data batch prediction, `pip install 'reviewstars[ray]'`)."""

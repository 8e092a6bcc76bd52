"""What a saved model version holds; serving loads it without importing scikit-learn."""

from dataclasses import dataclass, field

from classifier.intent import RequestTypeModel, UrgencyModel
from classifier.text_model import CategoryModel


@dataclass
class ModelBundle:
    category: CategoryModel
    request_type: RequestTypeModel | None = None
    #: Display names of the labels the category model predicts (code → name), if known.
    label_names: dict = field(default_factory=dict)
    #: Learned from this city's dispatched tickets (``hotline classifier train-router``).
    router: object = None
    #: Emergency or not, and where to transfer (``classifier.intent.urgency``); None (and in
    #: versions saved before it existed): the rules alone.
    urgency: UrgencyModel | None = None

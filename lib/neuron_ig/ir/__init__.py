"""Layer 2, the collections: datasets by ``ir_datasets`` id with the embedded ones registered (``datasets``,
``embedded``), relevance grades (``grades``), the selection / evaluation split of queries (``query_split``), the
relevance pairs NIG attributes (``pairs``), BM25 first stages (``retrieval``), ranking measures (``measures``) and
the TREC RAG 2024 passages (``trec_rag``). Imports only ``runtime``."""

//! KFP's list query parameters (`page_size`, `page_token`, `sort_by`, `filter`) parsed into a
//! `coracle_store::listing::ListRequest`. (being written)

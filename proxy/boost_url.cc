// Boost.URL's compiled part. Debian 12 ships Boost.URL 1.81 as headers only (no libboost_url), so
// its sources are built here, once, as Boost documents for header-only use.
#include <boost/url/src.hpp>

#include "server/openai_api.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tern::server {

json error_json(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", err}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<ApiError> parse_json_object(const std::string& body, json* out) {
  try {
    *out = json::parse(body);
  } catch (const json::parse_error& e) {
    return ApiError{400, std::string("the request body is not valid JSON: ") + e.what(), "invalid_request_error", "",
                    "invalid_json"};
  }
  if (!out->is_object()) return ApiError{400, "the request body must be a JSON object", "invalid_request_error", "", "invalid_json"};
  return std::nullopt;
}

namespace {

ApiError bad_param(const std::string& param, const std::string& what) {
  return ApiError{400, "'" + param + "' " + what, "invalid_request_error", param, "invalid_value"};
}

// A number in [lo, hi] (null counts as absent).
std::optional<ApiError> get_number(const json& j, const char* key, double lo, double hi, float* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return bad_param(key, "must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    return bad_param(key, "must be in [" + json(lo).dump() + ", " + json(hi).dump() + "], got " + it->dump());
  *out = static_cast<float>(v);
  return std::nullopt;
}

std::optional<ApiError> get_int(const json& j, const char* key, int64_t lo, int64_t hi, std::optional<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return bad_param(key, "must be an integer");
  const int64_t v = it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                        ? INT64_MAX
                        : it->get<int64_t>();
  if (v < lo || v > hi) return bad_param(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + it->dump());
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> get_bool(const json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return bad_param(key, "must be a boolean");
  *out = it->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> parse_messages(const json& j, std::vector<ChatMessage>* out) {
  auto it = j.find("messages");
  if (it == j.end() || it->is_null()) return ApiError{400, "'messages' is required", "invalid_request_error", "messages", "missing_required_parameter"};
  if (!it->is_array() || it->empty()) return bad_param("messages", "must be a non-empty array of messages");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return bad_param(at, "must be an object with 'role' and 'content'");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return bad_param(at + ".role", "must be a string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant")
      return bad_param(at + ".role", "must be 'system', 'user' or 'assistant', got '" + role->get<std::string>() + "'");
    if (r == "system" && i != 0) return bad_param(at + ".role", "a system message may only come first");
    auto content = m.find("content");
    std::string text;
    if (content == m.end() || content->is_null()) {
      text = "";
    } else if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      // Content parts: only text parts are understood.
      for (const json& part : *content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          return bad_param(at + ".content", "parts must be {\"type\": \"text\", \"text\": string}");
        text += part["text"].get<std::string>();
      }
    } else {
      return bad_param(at + ".content", "must be a string or an array of text parts");
    }
    out->push_back({r, text});
  }
  return std::nullopt;
}

std::optional<ApiError> parse_prompt(const json& j, CompletionParams* p) {
  auto it = j.find("prompt");
  if (it == j.end() || it->is_null()) return ApiError{400, "'prompt' is required", "invalid_request_error", "prompt", "missing_required_parameter"};
  if (it->is_string()) {
    p->prompt = it->get<std::string>();
    return std::nullopt;
  }
  if (it->is_array()) {
    if (it->size() == 1 && (*it)[0].is_string()) {
      p->prompt = (*it)[0].get<std::string>();
      return std::nullopt;
    }
    if (!it->empty() && std::all_of(it->begin(), it->end(), [](const json& t) { return t.is_number_integer(); })) {
      for (const json& t : *it) {
        const int64_t v = t.get<int64_t>();
        if (v < 0 || v > INT32_MAX) return bad_param("prompt", "token ids must be >= 0");
        p->prompt_ids.push_back(static_cast<int>(v));
      }
      p->prompt_is_ids = true;
      return std::nullopt;
    }
    return bad_param("prompt", "must be a string, a one-element array of strings or an array of token ids "
                               "(several prompts per request are not supported)");
  }
  return bad_param("prompt", "must be a string or an array of token ids");
}

}  // namespace

std::optional<ApiError> parse_completion_request(const std::string& body, Endpoint ep, uint64_t default_seed,
                                                 CompletionParams* p) {
  json j;
  if (auto e = parse_json_object(body, &j)) return e;
  p->endpoint = ep;
  if (auto it = j.find("model"); it != j.end() && !it->is_null() && !it->is_string())
    return bad_param("model", "must be a string");
  if (ep == Endpoint::Chat) {
    if (auto e = parse_messages(j, &p->messages)) return e;
  } else {
    if (auto e = parse_prompt(j, p)) return e;
  }
  std::optional<int64_t> v;
  if (auto e = get_int(j, "n", 1, 1, &v)) return ApiError{400, "'n' must be 1 (one choice per request)", "invalid_request_error", "n", "invalid_value"};
  const char* max_key = j.contains("max_completion_tokens") && !j["max_completion_tokens"].is_null() ? "max_completion_tokens" : "max_tokens";
  v.reset();
  if (auto e = get_int(j, max_key, 1, INT32_MAX, &v)) return e;
  if (v) p->max_tokens = static_cast<int>(*v);

  SamplerParams& s = p->sampler;
  s = SamplerParams{};
  s.penalty_last_n = -1;  // OpenAI's penalties count every token so far
  if (auto e = get_number(j, "temperature", 0.0, 2.0, &s.temperature)) return e;
  if (auto e = get_number(j, "top_p", 0.0, 1.0, &s.top_p)) return e;
  if (j.contains("top_p") && j["top_p"].is_number() && s.top_p <= 0.0f) return bad_param("top_p", "must be in (0, 1]");
  if (auto e = get_number(j, "min_p", 0.0, 1.0, &s.min_p)) return e;
  if (auto e = get_number(j, "presence_penalty", -2.0, 2.0, &s.presence_penalty)) return e;
  if (auto e = get_number(j, "frequency_penalty", -2.0, 2.0, &s.frequency_penalty)) return e;
  if (auto e = get_number(j, "repetition_penalty", 0.01, 10.0, &s.repeat_penalty)) return e;
  v.reset();
  if (auto e = get_int(j, "top_k", 0, INT32_MAX, &v)) return e;
  if (v) s.top_k = static_cast<int>(*v);
  v.reset();
  if (auto it = j.find("seed"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return bad_param("seed", "must be an integer");
    s.seed = it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
    p->seed_given = true;
  } else {
    s.seed = default_seed;
  }

  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      p->stop.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      if (it->size() > 4) return bad_param("stop", "may hold at most 4 strings");
      for (const json& x : *it) {
        if (!x.is_string()) return bad_param("stop", "must be a string or an array of strings");
        p->stop.push_back(x.get<std::string>());
      }
    } else {
      return bad_param("stop", "must be a string or an array of strings");
    }
    for (const auto& x : p->stop)
      if (x.empty()) return bad_param("stop", "strings must not be empty");
  }

  if (auto e = get_bool(j, "stream", &p->stream)) return e;
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad_param("stream_options", "must be an object");
    if (auto e = get_bool(*it, "include_usage", &p->include_usage)) return e;
  }

  if (ep == Endpoint::Chat) {
    bool lp = false;
    if (auto e = get_bool(j, "logprobs", &lp)) return e;
    v.reset();
    if (auto e = get_int(j, "top_logprobs", 0, 20, &v)) return e;
    if (v && !lp) return bad_param("top_logprobs", "requires 'logprobs': true");
    if (lp) p->top_logprobs = v ? static_cast<int>(*v) : 0;
  } else {
    v.reset();
    if (auto e = get_int(j, "logprobs", 0, 5, &v)) return e;
    if (v) p->top_logprobs = static_cast<int>(*v);
  }
  return std::nullopt;
}

size_t utf8_complete_prefix(const std::string& s) {
  // Walk back over at most 3 continuation bytes to the last lead byte; keep it only if its sequence is whole.
  const size_t n = s.size();
  size_t i = n;
  int cont = 0;
  while (i > 0 && cont < 4) {
    const unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {
      int need = 1;
      if ((c & 0xE0) == 0xC0) need = 2;
      else if ((c & 0xF0) == 0xE0) need = 3;
      else if ((c & 0xF8) == 0xF0) need = 4;
      return (n - (i - 1) >= static_cast<size_t>(need)) ? n : i - 1;
    }
    --i;
    ++cont;
  }
  return n;  // only continuation bytes (invalid anyway): let them through
}

std::string TextStreamer::feed(const std::string& piece) {
  if (stopped_) return {};
  pending_ += piece;
  // A stop string anywhere in what is pending ends the text there.
  size_t cut = std::string::npos;
  for (const auto& s : stop_) {
    const size_t at = pending_.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stop_)
    for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  size_t emit = utf8_complete_prefix(pending_.substr(0, pending_.size() - hold));
  std::string out = pending_.substr(0, emit);
  pending_.erase(0, emit);
  return out;
}

std::string TextStreamer::flush() {
  if (stopped_) return {};
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace tern::server

// GgufFile: parsing every part of a GGUF file, the typed getters, tensor views, and one test per malformed-file
// defect. Every file is crafted byte by byte with GgufBuilder, so each test states exactly what is wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "backend/backend.h"
#include "core/tensor.h"
#include "formats/gguf.h"
#include "formats/model_file.h"
#include "model/llama.h"
#include "gguf_builder.h"
#include "test_util.h"

using namespace tern;
using namespace tern_test;

namespace {

// A file named after the running test (plus `tag`), holding `bytes`.
std::string write_tmp(const std::string& bytes, const std::string& tag = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string p = temp_dir() + "/" + info->test_suite_name() + "." + info->name() + tag + ".gguf";
  write_file(p, bytes);
  return p;
}

Result<GgufFile> open_bytes(const std::string& bytes, std::string* path_out = nullptr, const std::string& tag = "") {
  std::string p = write_tmp(bytes, tag);
  if (path_out) *path_out = p;
  return GgufFile::open(p);
}

// Expects `r` to have failed with a message that names `path` and contains every one of `parts`.
template <class R>
void expect_error(const R& r, const std::string& path, std::initializer_list<std::string> parts) {
  ASSERT_FALSE(r.ok()) << "expected an error";
  const std::string& m = r.message();
  EXPECT_NE(m.find(path), std::string::npos) << "message does not name the file: " << m;
  for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "message lacks '" << p << "': " << m;
}

// Opens `bytes` and checks the error names the file and all of `parts`.
void expect_open_error(const std::string& bytes, std::initializer_list<std::string> parts, const std::string& tag = "") {
  std::string path;
  auto r = open_bytes(bytes, &path, tag);
  expect_error(r, path, parts);
}

// A small valid file: two keys and two F32 tensors.
GgufBuilder small_file() {
  GgufBuilder b;
  b.kv("general.architecture", GVal::str("llama"));
  b.kv("test.count", GVal::u32(7));
  b.tensor_f32("a", {2, 3}, {1, 2, 3, 4, 5, 6});
  b.tensor_f32("b", {5}, {-1, -2, -3, -4, -5});
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Parsing valid files

TEST(GgufParse, Version2And3) {
  for (uint32_t v : {2u, 3u}) {
    GgufBuilder b = small_file();
    b.version = v;
    std::string path;
    auto g = open_bytes(b.build(), &path, "v" + std::to_string(v));
    ASSERT_TRUE(g.ok()) << g.message();
    EXPECT_EQ(g->version(), v);
    EXPECT_EQ(g->path(), path);
    EXPECT_EQ(g->metadata().size(), 2u);
    EXPECT_EQ(g->tensors().size(), 2u);
  }
}

TEST(GgufParse, EmptyMetadataAndNoTensors) {
  GgufBuilder b;
  auto g = open_bytes(b.build());
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_TRUE(g->metadata().empty());
  EXPECT_TRUE(g->tensors().empty());
  EXPECT_EQ(g->find("anything"), nullptr);
}

TEST(GgufParse, EveryScalarTypeRoundTrips) {
  GgufBuilder b;
  b.kv("u8", GVal::u8(200))
      .kv("i8", GVal::i8(-5))
      .kv("u16", GVal::u16(60000))
      .kv("i16", GVal::i16(-300))
      .kv("u32", GVal::u32(4000000000u))
      .kv("i32", GVal::i32(-70000))
      .kv("f32", GVal::f32(1.5f))
      .kv("bool_t", GVal::boolean(true))
      .kv("bool_f", GVal::boolean(false))
      .kv("str", GVal::str("h\xc3\xa9llo"))
      .kv("empty_str", GVal::str(""))
      .kv("u64", GVal::u64(uint64_t{1} << 63))
      .kv("i64", GVal::i64(-(int64_t{1} << 40)))
      .kv("f64", GVal::f64(-2.25e-10));
  auto g = open_bytes(b.build());
  ASSERT_TRUE(g.ok()) << g.message();
  const GgufFile& f = g.value();
  ASSERT_EQ(f.metadata().size(), 14u);
  // Metadata keeps file order.
  EXPECT_EQ(f.metadata()[0].first, "u8");
  EXPECT_EQ(f.metadata()[13].first, "f64");

  auto get = [&](const char* k) {
    const GgufValue* v = f.find(k);
    EXPECT_NE(v, nullptr) << k;
    return v;
  };
  EXPECT_EQ(get("u8")->type, GgufType::UINT8);
  EXPECT_EQ(get("u8")->u, 200u);
  EXPECT_EQ(get("u8")->to_string(), "200");
  EXPECT_EQ(get("i8")->type, GgufType::INT8);
  EXPECT_EQ(get("i8")->i, -5);
  EXPECT_EQ(get("i8")->to_string(), "-5");
  EXPECT_EQ(get("u16")->u, 60000u);
  EXPECT_EQ(get("u16")->to_string(), "60000");
  EXPECT_EQ(get("i16")->i, -300);
  EXPECT_EQ(get("i16")->to_string(), "-300");
  EXPECT_EQ(get("u32")->u, 4000000000u);
  EXPECT_EQ(get("u32")->to_string(), "4000000000");
  EXPECT_EQ(get("i32")->i, -70000);
  EXPECT_EQ(get("i32")->to_string(), "-70000");
  EXPECT_EQ(get("u64")->type, GgufType::UINT64);
  EXPECT_EQ(get("u64")->u, uint64_t{1} << 63);
  EXPECT_EQ(get("u64")->to_string(), "9223372036854775808");
  EXPECT_EQ(get("i64")->type, GgufType::INT64);
  EXPECT_EQ(get("i64")->i, -(int64_t{1} << 40));
  EXPECT_EQ(get("i64")->to_string(), "-1099511627776");
  EXPECT_EQ(get("f32")->type, GgufType::FLOAT32);
  EXPECT_EQ(get("f32")->f, 1.5);
  EXPECT_EQ(get("f32")->to_string(), "1.5");
  EXPECT_EQ(get("f64")->type, GgufType::FLOAT64);
  EXPECT_EQ(get("f64")->f, -2.25e-10);
  EXPECT_EQ(get("f64")->to_string(), "-2.25e-10");
  EXPECT_EQ(get("bool_t")->type, GgufType::BOOL);
  EXPECT_EQ(get("bool_t")->to_string(), "true");
  EXPECT_EQ(get("bool_f")->to_string(), "false");
  EXPECT_EQ(get("str")->type, GgufType::STRING);
  EXPECT_EQ(get("str")->str, "h\xc3\xa9llo");
  EXPECT_EQ(get("str")->to_string(), "\"h\xc3\xa9llo\"");
  EXPECT_EQ(get("empty_str")->str, "");
  EXPECT_EQ(get("empty_str")->to_string(), "\"\"");

  EXPECT_TRUE(get("i64")->is_integer());
  EXPECT_FALSE(get("f32")->is_integer());
  EXPECT_TRUE(get("f64")->is_float());
  EXPECT_FALSE(get("bool_t")->is_integer());
}

TEST(GgufParse, ArraysOfEveryElementType) {
  GgufBuilder b;
  b.kv("a_u8", GVal::arr(kGgufU8, {GVal::u8(1), GVal::u8(2), GVal::u8(255)}))
      .kv("a_i16", GVal::arr(kGgufI16, {GVal::i16(-1), GVal::i16(2)}))
      .kv("a_u64", GVal::arr(kGgufU64, {GVal::u64(uint64_t{1} << 40)}))
      .kv("a_i32", GVal::i32_arr({-3, 4, 5}))
      .kv("a_f32", GVal::f32_arr({0.5f, -1.25f}))
      .kv("a_f64", GVal::arr(kGgufF64, {GVal::f64(1e300)}))
      .kv("a_bool", GVal::arr(kGgufBool, {GVal::boolean(true), GVal::boolean(false)}))
      .kv("a_str", GVal::str_arr({"<s>", "", "\xe2\x96\x81the"}))
      .kv("a_empty", GVal::arr(kGgufI64, {}));
  auto g = open_bytes(b.build());
  ASSERT_TRUE(g.ok()) << g.message();
  const GgufFile& f = g.value();

  const GgufValue* u8 = f.find("a_u8");
  ASSERT_NE(u8, nullptr);
  EXPECT_EQ(u8->type, GgufType::ARRAY);
  EXPECT_EQ(u8->elem_type, GgufType::UINT8);
  ASSERT_EQ(u8->arr.size(), 3u);
  EXPECT_EQ(u8->arr[2].u, 255u);
  EXPECT_EQ(u8->to_string(), "[uint8 x 3: 1, 2, 255]");

  EXPECT_EQ(f.find("a_i16")->arr[0].i, -1);
  EXPECT_EQ(f.find("a_i16")->to_string(), "[int16 x 2: -1, 2]");
  EXPECT_EQ(f.find("a_u64")->arr[0].u, uint64_t{1} << 40);
  EXPECT_EQ(f.find("a_i32")->to_string(), "[int32 x 3: -3, 4, 5]");
  EXPECT_EQ(f.find("a_f32")->arr[1].f, -1.25);
  EXPECT_EQ(f.find("a_f32")->to_string(), "[float32 x 2: 0.5, -1.25]");
  EXPECT_EQ(f.find("a_f64")->arr[0].f, 1e300);
  EXPECT_EQ(f.find("a_bool")->to_string(), "[bool x 2: true, false]");
  const GgufValue* s = f.find("a_str");
  ASSERT_EQ(s->arr.size(), 3u);
  EXPECT_EQ(s->arr[0].str, "<s>");
  EXPECT_EQ(s->arr[1].str, "");
  EXPECT_EQ(s->arr[2].str, "\xe2\x96\x81the");
  EXPECT_EQ(s->to_string(), "[string x 3: \"<s>\", \"\", \"\xe2\x96\x81the\"]");
  EXPECT_EQ(f.find("a_empty")->elem_type, GgufType::INT64);
  EXPECT_TRUE(f.find("a_empty")->arr.empty());
  EXPECT_EQ(f.find("a_empty")->to_string(), "[int64 x 0: ]");

  // to_string shows at most max_items elements.
  EXPECT_EQ(f.find("a_u8")->to_string(2), "[uint8 x 3: 1, 2, ...]");
}

TEST(GgufParse, NestedArrays) {
  // [[1, 2], [], [3]] of int32, and an array of arrays of strings of arrays (three levels).
  GVal inner1 = GVal::i32_arr({1, 2}), inner2 = GVal::i32_arr({}), inner3 = GVal::i32_arr({3});
  GVal deep = GVal::arr(kGgufArray, {GVal::arr(kGgufArray, {GVal::str_arr({"x", "y"})})});
  GgufBuilder b;
  b.kv("nested", GVal::arr(kGgufArray, {inner1, inner2, inner3})).kv("deep", deep).kv("after", GVal::u8(9));
  auto g = open_bytes(b.build());
  ASSERT_TRUE(g.ok()) << g.message();
  const GgufValue* n = g->find("nested");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->elem_type, GgufType::ARRAY);
  ASSERT_EQ(n->arr.size(), 3u);
  EXPECT_EQ(n->arr[0].type, GgufType::ARRAY);
  EXPECT_EQ(n->arr[0].elem_type, GgufType::INT32);
  ASSERT_EQ(n->arr[0].arr.size(), 2u);
  EXPECT_EQ(n->arr[0].arr[1].i, 2);
  EXPECT_TRUE(n->arr[1].arr.empty());
  EXPECT_EQ(n->arr[2].arr[0].i, 3);
  EXPECT_EQ(n->to_string(), "[array x 3: [int32 x 2: 1, 2], [int32 x 0: ], [int32 x 1: 3]]");
  const GgufValue* d = g->find("deep");
  ASSERT_EQ(d->arr.size(), 1u);
  ASSERT_EQ(d->arr[0].arr.size(), 1u);
  EXPECT_EQ(d->arr[0].arr[0].elem_type, GgufType::STRING);
  EXPECT_EQ(d->arr[0].arr[0].arr[1].str, "y");
  // The value after the nested arrays is read from the right place.
  EXPECT_EQ(g->find("after")->u, 9u);
}

TEST(GgufParse, TypedGetters) {
  GgufBuilder b;
  b.kv("u", GVal::u16(42))
      .kv("i_pos", GVal::i32(7))
      .kv("i_neg", GVal::i64(-1))
      .kv("f", GVal::f32(0.25f))
      .kv("s", GVal::str("text"))
      .kv("t", GVal::boolean(true))
      .kv("arr", GVal::str_arr({"a", "b"}));
  std::string path;
  auto g = open_bytes(b.build(), &path);
  ASSERT_TRUE(g.ok()) << g.message();
  const GgufFile& f = g.value();

  EXPECT_EQ(f.get_uint("u").value(), 42u);
  EXPECT_EQ(f.get_uint("i_pos").value(), 7u);
  expect_error(f.get_uint("i_neg"), path, {"'i_neg'", "negative", "-1"});
  expect_error(f.get_uint("missing.key"), path, {"missing key 'missing.key'"});
  expect_error(f.get_uint("s"), path, {"'s'", "string", "integer"});
  expect_error(f.get_uint("f"), path, {"'f'", "float32", "integer"});

  EXPECT_EQ(f.get_float("f").value(), 0.25);
  EXPECT_EQ(f.get_float("u").value(), 42.0);
  EXPECT_EQ(f.get_float("i_neg").value(), -1.0);
  expect_error(f.get_float("s"), path, {"'s'", "expected a number"});
  expect_error(f.get_float("nope"), path, {"missing key 'nope'"});

  EXPECT_EQ(f.get_string("s").value(), "text");
  expect_error(f.get_string("u"), path, {"'u'", "uint16", "expected a string"});
  expect_error(f.get_string("nope"), path, {"missing key 'nope'"});

  EXPECT_EQ(f.get_bool("t").value(), true);
  expect_error(f.get_bool("u"), path, {"'u'", "expected a bool"});
  expect_error(f.get_bool("nope"), path, {"missing key 'nope'"});

  auto arr = f.get_array("arr", GgufType::STRING);
  ASSERT_TRUE(arr.ok()) << arr.message();
  ASSERT_EQ(arr.value()->size(), 2u);
  EXPECT_EQ((*arr.value())[1].str, "b");
  expect_error(f.get_array("arr", GgufType::FLOAT32), path, {"'arr'", "float32"});
  expect_error(f.get_array("s", GgufType::STRING), path, {"'s'", "expected an array of string"});
  expect_error(f.get_array("nope", GgufType::INT32), path, {"missing key 'nope'"});
}

TEST(GgufParse, DefaultAlignmentIs32) {
  GgufBuilder b = small_file();
  std::string bytes = b.build();
  auto g = open_bytes(bytes);
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g->alignment(), 32u);
  EXPECT_EQ(g->data_offset() % 32, 0u);
  EXPECT_EQ(g->data_offset(), b.layout().data_begin);
  EXPECT_GE(g->data_offset(), b.layout().tensor_info_end);
  EXPECT_LT(g->data_offset(), b.layout().tensor_info_end + 32);
}

TEST(GgufParse, CustomAlignment64) {
  GgufBuilder b = small_file();
  b.alignment = 64;
  b.kv("general.alignment", GVal::u32(64));
  std::string bytes = b.build();
  auto g = open_bytes(bytes);
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g->alignment(), 64u);
  EXPECT_EQ(g->data_offset() % 64, 0u);
  EXPECT_EQ(g->data_offset(), b.layout().data_begin);
  ASSERT_EQ(g->tensors().size(), 2u);
  EXPECT_EQ(g->tensors()[1].offset, 64u);  // "a" takes 24 bytes; "b" starts at the next multiple of 64
  auto v = g->view(g->tensors()[1]);
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(v->data, g->file()->data() + b.layout().tensor_data[1]);
  EXPECT_EQ(static_cast<const float*>(v->data)[4], -5.0f);
}

TEST(GgufParse, AlignmentNotPowerOfTwoRejected) {
  for (uint32_t a : {0u, 48u, 3u}) {
    GgufBuilder b = small_file();
    b.kv("general.alignment", GVal::u32(a));
    expect_open_error(b.build(), {"general.alignment", "power of two"}, std::to_string(a));
  }
}

TEST(GgufParse, AlignmentOfWrongTypeRejected) {
  GgufBuilder b = small_file();
  b.kv("general.alignment", GVal::str("64"));
  expect_open_error(b.build(), {"general.alignment"});
}

TEST(GgufParse, TensorInfos) {
  GgufBuilder b = small_file();
  b.build();
  auto g = open_bytes(b.build());
  ASSERT_TRUE(g.ok()) << g.message();
  ASSERT_EQ(g->tensors().size(), 2u);
  const GgufTensorInfo& a = g->tensors()[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.ggml_type, 0u);
  EXPECT_EQ(a.ne, (std::vector<uint64_t>{3, 2}));  // innermost first, as stored
  EXPECT_EQ(a.offset, 0u);
  EXPECT_EQ(g->tensors()[1].offset, 32u);
}

TEST(GgufView, ShapeReversedAndDataAtAlignedOffset) {
  GgufBuilder b;
  std::vector<float> vals(24);
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<float>(i) * 0.5f - 3.0f;
  b.tensor_f32("first", {3}, {7, 8, 9});       // 12 bytes, so the next tensor needs padding
  b.tensor_f32("cube", {2, 3, 4}, vals);        // stored ne = {4, 3, 2}
  std::string bytes = b.build();
  auto g = open_bytes(bytes);
  ASSERT_TRUE(g.ok()) << g.message();
  const GgufTensorInfo& info = g->tensors()[1];
  EXPECT_EQ(info.ne, (std::vector<uint64_t>{4, 3, 2}));
  EXPECT_EQ(info.offset, 32u);
  auto v = g->view(info);
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(v->name, "cube");
  EXPECT_EQ(v->dtype, DType::F32);
  EXPECT_EQ(v->shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(v->nbytes, 24u * 4);
  EXPECT_EQ(v->data, g->file()->data() + g->data_offset() + 32);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v->data) % 32, 0u);  // the map is page aligned
  EXPECT_EQ(v->rows(), 6);
  EXPECT_EQ(v->cols(), 4);
  std::vector<float> row(4);
  row_to_f32(v->dtype, v->row_ptr(5), row.data(), 4);  // row 5 = elements 20..23
  for (int i = 0; i < 4; ++i) EXPECT_EQ(row[i], vals[20 + i]);
}

TEST(GgufView, F16AndBF16ReadBack) {
  // Values exact in both half and bfloat16, so the read-back must be exact.
  const std::vector<float> vals = {1.0f, -2.0f, 0.5f, 3.25f, -0.125f, 0.0f, 1024.0f, -6.0f};
  GgufBuilder b;
  b.tensor({"h", {4, 2}, kGgmlF16, f16_bytes(vals), {}});
  b.tensor({"bf", {4, 2}, kGgmlBF16, bf16_bytes(vals), {}});
  auto g = open_bytes(b.build());
  ASSERT_TRUE(g.ok()) << g.message();
  // The encoding is the standard one: 1.0 is 0x3C00 in half and 0x3F80 in bfloat16.
  for (int k = 0; k < 2; ++k) {
    auto v = g->view(g->tensors()[k]);
    ASSERT_TRUE(v.ok()) << v.message();
    EXPECT_EQ(v->dtype, k == 0 ? DType::F16 : DType::BF16);
    EXPECT_EQ(v->shape, (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(v->nbytes, 16u);
    uint16_t first;
    std::memcpy(&first, v->data, 2);
    EXPECT_EQ(first, k == 0 ? 0x3C00 : 0x3F80);
    for (int r = 0; r < 2; ++r) {
      std::vector<float> row(4);
      row_to_f32(v->dtype, v->row_ptr(r), row.data(), 4);
      for (int i = 0; i < 4; ++i) EXPECT_EQ(row[i], vals[r * 4 + i]) << "tensor " << k << " row " << r << " col " << i;
    }
  }
}

TEST(GgufView, UnsupportedQuantizedTypeRejectedByView) {
  // Q8_1 is a layout ggml uses for activations only; no model weight is stored in it.
  GgufBuilder b;
  b.tensor({"blk.0.ffn_up.weight", {32, 2}, 9 /* Q8_1 */, std::string(2 * 36, '\0'), {}});
  std::string path;
  auto g = open_bytes(b.build(), &path);
  ASSERT_TRUE(g.ok()) << g.message();  // parsing knows the layout; only view() refuses
  ASSERT_FALSE(dtype_is_supported(DType::Q8_1));
  expect_error(g->view(g->tensors()[0]), path, {"'blk.0.ffn_up.weight'", "Q8_1", "not supported"});
}

TEST(GgufView, Q4_0ViewedOrRejectedByName) {
  // Q4_0 weights are rejected with the tensor and type named until the build can dequantize them; once it
  // can, the view covers exactly the file's blocks.
  GgufBuilder b;
  b.tensor({"blk.0.ffn_up.weight", {64, 3}, kGgmlQ4_0, std::string(3 * 2 * 18, '\0'), {}});
  std::string path;
  auto g = open_bytes(b.build(), &path);
  ASSERT_TRUE(g.ok()) << g.message();
  auto v = g->view(g->tensors()[0]);
  if (!dtype_is_supported(DType::Q4_0)) {
    expect_error(v, path, {"'blk.0.ffn_up.weight'", "Q4_0", "not supported"});
    return;
  }
  ASSERT_TRUE(v.ok()) << v.message();
  EXPECT_EQ(v->dtype, DType::Q4_0);
  EXPECT_EQ(v->shape, (std::vector<int64_t>{3, 64}));
  EXPECT_EQ(v->nbytes, 3u * 2 * 18);
  EXPECT_EQ(v->row_ptr(1), static_cast<const uint8_t*>(v->data) + 36);
}

TEST(GgufView, IntegerTypeRejectedByView) {
  GgufBuilder b;
  b.tensor({"ints", {4}, 26 /* I32 */, std::string(16, '\0'), {}});
  std::string path;
  auto g = open_bytes(b.build(), &path);
  ASSERT_TRUE(g.ok()) << g.message();
  expect_error(g->view(g->tensors()[0]), path, {"'ints'", "I32"});
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed files: one defect each. Every message names the file and, where there is one, the key or tensor.

TEST(GgufMalformed, EmptyFile) { expect_open_error("", {"too small", "0 bytes"}); }

TEST(GgufMalformed, MissingFileAndDirectory) {
  const std::string missing = temp_dir() + "/no_such_file.gguf";
  expect_error(GgufFile::open(missing), missing, {"cannot open"});
  expect_error(GgufFile::open(temp_dir()), temp_dir(), {"directory"});
}

TEST(GgufMalformed, WrongMagic) {
  GgufBuilder b = small_file();
  b.magic = "GGUX";
  expect_open_error(b.build(), {"bad magic"});
  b.magic = "FUGG";  // big-endian byte order
  expect_open_error(b.build(), {"bad magic"}, "be");
}

TEST(GgufMalformed, UnknownVersion) {
  for (uint32_t v : {0u, 1u, 4u, 0x03000000u}) {
    GgufBuilder b = small_file();
    b.version = v;
    expect_open_error(b.build(), {"unsupported GGUF version " + std::to_string(v)}, std::to_string(v));
  }
}

TEST(GgufMalformed, TruncatedInHeader) {
  const std::string bytes = small_file().build();
  expect_open_error(bytes.substr(0, 3), {"too small"}, "3");
  expect_open_error(bytes.substr(0, 6), {"truncated", "version"}, "6");
  expect_open_error(bytes.substr(0, 12), {"truncated", "tensor count"}, "12");
  expect_open_error(bytes.substr(0, 20), {"truncated", "metadata count"}, "20");
}

// The truncation tests put a long value first: a file shorter than its counts allow is rejected earlier, by
// the count bounds (see HugeKvCount), and these tests are about the reads themselves.
const std::string kLongName(64, 'n');

TEST(GgufMalformed, TruncatedInKey) {
  GgufBuilder b;
  b.kv("general.name", GVal::str(kLongName)).kv("test.count", GVal::u32(7));
  const std::string bytes = b.build();
  // Inside the length prefix of the second key, then inside the key's bytes.
  expect_open_error(bytes.substr(0, b.layout().kv_begin[1] + 4), {"truncated", "metadata key"}, "len");
  expect_open_error(bytes.substr(0, b.layout().kv_begin[1] + 8 + 5), {"truncated", "metadata key"}, "bytes");
}

TEST(GgufMalformed, TruncatedInValueType) {
  GgufBuilder b = small_file();
  const std::string bytes = b.build();
  expect_open_error(bytes.substr(0, b.layout().kv_value[1] + 2), {"truncated", "'test.count'"});
}

TEST(GgufMalformed, TruncatedInValue) {
  GgufBuilder b;
  b.kv("general.name", GVal::str(kLongName)).kv("k.u64", GVal::u64(5)).kv("k.str", GVal::str("a string value"));
  const std::string bytes = b.build();
  expect_open_error(bytes.substr(0, b.layout().kv_value[1] + 4 + 3), {"truncated", "'k.u64'"}, "u64");
  expect_open_error(bytes.substr(0, b.layout().kv_value[2] + 4 + 8 + 3), {"truncated", "'k.str'"}, "str");
}

TEST(GgufMalformed, TruncatedInArray) {
  GgufBuilder b;
  b.kv("tokenizer.ggml.tokens", GVal::str_arr({std::string(40, 'a'), std::string(40, 'b'), std::string(40, 'c')}));
  const std::string bytes = b.build();
  const size_t arr = b.layout().kv_value[0] + 4;  // element type, count, elements
  // In the element type, in the count, then inside the second string.
  expect_open_error(bytes.substr(0, arr + 2), {"'tokenizer.ggml.tokens'"}, "type");
  expect_open_error(bytes.substr(0, arr + 4 + 5), {"'tokenizer.ggml.tokens'"}, "count");
  expect_open_error(bytes.substr(0, arr + 12 + 48 + 8 + 10), {"truncated", "'tokenizer.ggml.tokens'"}, "elem");
}

TEST(GgufMalformed, TruncatedInTensorInfo) {
  GgufBuilder b = small_file();
  const std::string bytes = b.build();
  const size_t t1 = b.layout().tensor_info_begin[1];  // tensor "b": name (8+1), n_dims 4, ne 8, type 4, offset 8
  expect_open_error(bytes.substr(0, t1 + 3), {"truncated", "tensor name"}, "name");
  expect_open_error(bytes.substr(0, t1 + 9 + 2), {"truncated", "'b'"}, "ndims");
  expect_open_error(bytes.substr(0, t1 + 13 + 4), {"truncated", "'b'"}, "dims");
  expect_open_error(bytes.substr(0, t1 + 21 + 1), {"truncated", "'b'"}, "type");
  expect_open_error(bytes.substr(0, t1 + 25 + 7), {"truncated", "'b'"}, "offset");
}

TEST(GgufMalformed, TruncatedBeforeDataSection) {
  GgufBuilder b = small_file();
  const std::string bytes = b.build();
  ASSERT_GT(b.layout().data_begin, b.layout().tensor_info_end);  // there is padding to cut into
  expect_open_error(bytes.substr(0, b.layout().tensor_info_end + 1), {"truncated", "tensor data"});
}

TEST(GgufMalformed, TruncatedInData) {
  GgufBuilder b = small_file();
  const std::string bytes = b.build();
  // Cutting the last tensor's bytes names it; cutting into the first names the first.
  expect_open_error(bytes.substr(0, bytes.size() - 1), {"'b'", "past the end"}, "b");
  expect_open_error(bytes.substr(0, b.layout().tensor_data[0] + 10), {"'a'", "past the end"}, "a");
}

TEST(GgufMalformed, UnknownValueType) {
  GgufBuilder b;
  b.kv("general.name", GVal::str("x")).kv("bad.type", GVal::raw(13, le_u32(0)));
  expect_open_error(b.build(), {"'bad.type'", "unknown metadata value type 13"});
}

TEST(GgufMalformed, UnknownArrayElementType) {
  GgufBuilder b;
  b.kv("bad.elems", GVal::raw(kGgufArray, le_u32(99) + le_u64(1) + le_u32(0)));
  expect_open_error(b.build(), {"'bad.elems'", "unknown array element type 99"});
}

TEST(GgufMalformed, ArrayLengthLargerThanFile) {
  GgufBuilder b;
  b.kv("big.array", GVal::raw(kGgufArray, le_u32(kGgufU32) + le_u64(1000) + le_u32(1) + le_u32(2)));
  expect_open_error(b.build(), {"'big.array'", "array length 1000", "exceeds"});
  // A length near 2^64: must not overflow into a small allocation.
  GgufBuilder h;
  h.kv("huge.array", GVal::raw(kGgufArray, le_u32(kGgufString) + le_u64(~uint64_t{0}) + le_u64(0)));
  expect_open_error(h.build(), {"'huge.array'", "exceeds"}, "huge");
}

TEST(GgufMalformed, NestedArrayLengthLargerThanFile) {
  // The outer array is fine; its one inner array claims 2^40 uint64 elements.
  GgufBuilder b;
  b.kv("outer", GVal::raw(kGgufArray, le_u32(kGgufArray) + le_u64(1) + le_u32(kGgufU64) + le_u64(uint64_t{1} << 40)));
  expect_open_error(b.build(), {"'outer'", "exceeds"});
}

TEST(GgufMalformed, ArraysNestedTooDeeply) {
  // 64 levels of single-element arrays: rejected before the recursion gets deep.
  std::string p;
  for (int d = 0; d < 64; ++d) p += le_u32(kGgufArray) + le_u64(1);
  p += le_u32(kGgufU8) + le_u64(0);
  GgufBuilder b;
  b.kv("deep", GVal::raw(kGgufArray, p));
  expect_open_error(b.build(), {"'deep'", "nested too deeply"});
}

TEST(GgufMalformed, HugeStringLength) {
  GgufBuilder b;
  b.kv("huge.str", GVal::raw(kGgufString, le_u64(uint64_t{1} << 62) + "abc"));
  expect_open_error(b.build(), {"'huge.str'", "truncated"});
  GgufBuilder m;
  m.kv("max.str", GVal::raw(kGgufString, le_u64(~uint64_t{0}) + "abc"));
  expect_open_error(m.build(), {"'max.str'", "truncated"}, "max");
}

TEST(GgufMalformed, HugeKeyLength) {
  GgufBuilder b;
  b.kv("fine", GVal::u8(1)).raw_entry(le_u64(~uint64_t{0} - 3) + "key");
  expect_open_error(b.build(), {"truncated", "metadata key"});
}

TEST(GgufMalformed, HugeTensorNameLength) {
  GgufBuilder b = small_file();
  std::string bytes = b.build();
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(bytes.data() + b.layout().tensor_info_begin[0], &huge, 8);
  expect_open_error(bytes, {"truncated", "tensor name"});
}

TEST(GgufMalformed, BoolValueTwo) {
  GgufBuilder b;
  b.kv("flag", GVal::raw(kGgufBool, le_u8(2)));
  expect_open_error(b.build(), {"'flag'", "bool value 2"});
  GgufBuilder a;
  a.kv("flags", GVal::raw(kGgufArray, le_u32(kGgufBool) + le_u64(2) + le_u8(1) + le_u8(255)));
  expect_open_error(a.build(), {"'flags'", "bool value 255"}, "arr");
}

TEST(GgufMalformed, DuplicateKey) {
  GgufBuilder b;
  b.kv("general.name", GVal::str("a")).kv("other", GVal::u8(1)).kv("general.name", GVal::str("b"));
  expect_open_error(b.build(), {"duplicate", "'general.name'"});
}

TEST(GgufMalformed, DuplicateTensor) {
  GgufBuilder b = small_file();
  b.tensor_f32("a", {2}, {1, 2});
  expect_open_error(b.build(), {"duplicate tensor 'a'"});
}

TEST(GgufMalformed, ZeroDims) {
  GgufBuilder b = small_file();
  b.tensors()[1].ne = {};
  expect_open_error(b.build(), {"'b'", "0 dimensions"});
}

TEST(GgufMalformed, FiveDims) {
  GgufBuilder b = small_file();
  b.tensors()[1].ne = {5, 1, 1, 1, 1};
  expect_open_error(b.build(), {"'b'", "5 dimensions"});
  b.tensors()[1].ne = std::vector<uint64_t>(1000, 1);
  b.tensors()[1].ne[0] = 5;
  expect_open_error(b.build(), {"'b'", "1000 dimensions"}, "1000");
}

TEST(GgufMalformed, ZeroDimension) {
  GgufBuilder b = small_file();
  b.tensors()[0].ne = {3, 0};
  expect_open_error(b.build(), {"'a'", "dimension 0"});
}

TEST(GgufMalformed, DimensionProductOverflows) {
  const uint64_t big = uint64_t{1} << 32;
  GgufBuilder b = small_file();
  b.tensors()[0].ne = {big, big, big};
  expect_open_error(b.build(), {"'a'", "overflows"});
  GgufBuilder m = small_file();
  m.tensors()[0].ne = {~uint64_t{0}};
  expect_open_error(m.build(), {"'a'", "invalid or overflows"}, "max");
  // The product fits in 64 bits but not once multiplied by the element size.
  GgufBuilder e = small_file();
  e.tensors()[0].ne = {uint64_t{1} << 31, uint64_t{1} << 31, 8};
  expect_open_error(e.build(), {"'a'"}, "bytes");
}

TEST(GgufMalformed, UnknownTensorType) {
  GgufBuilder b = small_file();
  b.tensors()[1].ggml_type = 99;
  expect_open_error(b.build(), {"'b'", "unknown tensor type 99"});
  b.tensors()[1].ggml_type = 4;  // a retired ggml id (Q4_2)
  expect_open_error(b.build(), {"'b'", "unknown tensor type 4"}, "4");
}

TEST(GgufMalformed, RowNotMultipleOfBlockSize) {
  GgufBuilder b;
  b.tensor({"blk.0.attn_q.weight", {33, 2}, kGgmlQ4_0, std::string(4 * 18, '\0'), {}});
  expect_open_error(b.build(), {"'blk.0.attn_q.weight'", "row length 33", "Q4_0", "block size 32"});
  GgufBuilder k;
  k.tensor({"qk", {128}, kGgmlQ4_K, std::string(144, '\0'), {}});
  expect_open_error(k.build(), {"'qk'", "Q4_K", "256"}, "k");
}

TEST(GgufMalformed, MisalignedTensorOffset) {
  GgufBuilder b = small_file();
  b.tensors()[1].offset = 36;
  expect_open_error(b.build(), {"'b'", "offset 36", "not aligned to 32"});
}

TEST(GgufMalformed, TensorDataPastEndOfFile) {
  GgufBuilder b = small_file();
  b.tensors()[1].offset = 4096;
  std::string bytes = b.build();
  bytes.resize(b.layout().data_begin + 64);  // the file stops long before offset 4096
  expect_open_error(bytes, {"'b'", "offset 4096", "past the end"});
  // An offset near 2^64 must not wrap around.
  GgufBuilder w = small_file();
  w.tensors()[1].offset = ~uint64_t{0} - 31;
  std::string wb = w.build();
  wb.resize(w.layout().data_begin + 64);
  expect_open_error(wb, {"'b'", "past the end"}, "wrap");
}

TEST(GgufMalformed, HugeTensorCount) {
  GgufBuilder b = small_file();
  b.tensor_count = uint64_t{1} << 60;
  expect_open_error(b.build(), {"tensor count", "exceeds"});
  b.tensor_count = 3;  // plausible but one more than present: the padding and data are read as a tensor info
  expect_open_error(b.build(), {}, "3");
}

TEST(GgufMalformed, HugeKvCount) {
  GgufBuilder b = small_file();
  b.kv_count = ~uint64_t{0};
  expect_open_error(b.build(), {"metadata count", "exceeds"});
}

// ---------------------------------------------------------------------------------------------------------------
// Fuzz-style: every truncation and many random byte flips of a small valid model must give an error or a
// valid file, never a crash (this also runs under ASan/UBSan).

namespace {

GgufBuilder fuzz_model() {
  TinyLlama t;  // as small as a valid model gets (head_dim 2, GQA 2:1): the loops below scale with its size
  t.dim = 4;
  t.hidden = 4;
  t.n_kv_heads = 1;
  t.vocab = 8;
  t.ctx = 8;
  GgufBuilder b = t.builder();
  b.kv("tokenizer.ggml.tokens", GVal::str_arr({"<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"}));
  b.kv("nested", GVal::arr(kGgufArray, {GVal::f32_arr({1.0f}), GVal::i32_arr({1, 2})}));
  b.kv("flag", GVal::boolean(true));
  return b;
}

// Rewrites `path` without truncating it in place: ext4 flushes a file to disk when it is truncated to zero
// and rewritten (auto_da_alloc), which made these loops I/O-bound.
void replace_file(const std::string& path, const std::string& bytes) {
  ::unlink(path.c_str());
  write_file(path, bytes);
}

// When open succeeds, everything it reports must be consistent with the file's size.
void check_consistent(const GgufFile& g) {
  for (const auto& t : g.tensors()) {
    auto v = g.view(t);
    if (!v) continue;
    const uint8_t* begin = g.file()->data();
    const uint8_t* p = static_cast<const uint8_t*>(v->data);
    ASSERT_GE(p, begin);
    ASSERT_LE(p + v->nbytes, begin + g.file()->size()) << t.name;
  }
}

}  // namespace

TEST(GgufFuzz, TruncateAtEveryByte) {
  const std::string bytes = fuzz_model().build();
  const std::string path = temp_dir() + "/fuzz_truncate.gguf";
  write_file(path, bytes);
  ASSERT_TRUE(GgufFile::open(path).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    replace_file(path, bytes.substr(0, n));
    auto g = GgufFile::open(path);
    // The last tensor ends at the end of the file, so every proper prefix is incomplete.
    ASSERT_FALSE(g.ok()) << "truncated at " << n << " of " << bytes.size() << " was accepted";
    ASSERT_NE(g.message().find(path), std::string::npos) << g.message();
    if (n % 7 == 0) {  // the model loader on a sample of them (it reparses the same bytes)
      auto m = load_model_file(path);
      ASSERT_FALSE(m.ok()) << "truncated at " << n;
    }
  }
}

TEST(GgufFuzz, FlipBytes) {
  GgufBuilder b = fuzz_model();
  const std::string bytes = b.build();
  const size_t header_and_infos = b.layout().data_begin;  // where flips matter most
  const std::string path = temp_dir() + "/fuzz_flip.gguf";
  uint64_t state = 20240601;
  auto next = [&]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  int accepted = 0, loaded = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::string m = bytes;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int f = 0; f < flips; ++f) {
      // Nine flips in ten land before the tensor data; flipped weights are valid files.
      const size_t pos = next() % 10 ? next() % header_and_infos : next() % m.size();
      const uint32_t kind = next() % 4;
      if (kind == 0) m[pos] = static_cast<char>(0xff);
      else if (kind == 1) m[pos] = 0;
      else m[pos] = static_cast<char>(m[pos] ^ (1u << (next() % 8)));
    }
    replace_file(path, m);
    auto g = GgufFile::open(path);
    if (g.ok()) {
      ++accepted;
      check_consistent(g.value());
      auto model = load_model_file(path);
      if (!model.ok()) {
        EXPECT_NE(model.message().find(path), std::string::npos) << model.message();
      } else {
        // A file the loader accepts must also run: one token through the reference forward pass.
        ++loaded;
        const ModelFile& mf = *model.value();
        auto be = make_reference_backend();
        auto lm = LlamaModel::create(mf.config, mf.weights, *be, std::min(mf.config.max_seq_len, 4), 4);
        ASSERT_TRUE(lm.ok()) << lm.message();
        std::vector<float> logits(static_cast<size_t>(mf.config.vocab_size));
        const int tok = 1 % mf.config.vocab_size;
        EXPECT_TRUE(lm.value()->forward(&tok, 1, 0, logits.data()).ok());
      }
    } else {
      EXPECT_NE(g.message().find(path), std::string::npos) << g.message();
    }
  }
  // Sanity: some mutations (e.g. inside string bytes or weights) leave a valid file.
  EXPECT_GT(accepted, 0);
  EXPECT_GT(loaded, 0);
}

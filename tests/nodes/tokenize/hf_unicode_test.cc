#include "nodes/tokenize/hf_unicode.h"

#include <gtest/gtest.h>

namespace nlpflow::hf_unicode {
namespace {

TEST(HfUnicodeTest, CompatTableWasGeneratedForTheLinkedUtf8proc) {
  EXPECT_EQ(LinkedUnicodeVersion(), CompatTableUnicodeVersion())
      << "utf8proc changed: rerun nodes/tokenize/gen_hf_unicode_compat.py";
}

TEST(HfUnicodeTest, ClassesFollowUtf8procOutsideTheCompatTable) {
  EXPECT_EQ(ClassOf(U'a'), HfCharClass::kNone);
  EXPECT_EQ(ClassOf(U'!'), HfCharClass::kPunctuation);
  EXPECT_EQ(ClassOf(0x00BF), HfCharClass::kPunctuation);  // ¿
  EXPECT_EQ(ClassOf(0x3002), HfCharClass::kPunctuation);  // 。
  EXPECT_EQ(ClassOf(0x0301), HfCharClass::kNonspacingMark);
  EXPECT_EQ(ClassOf(0x200B), HfCharClass::kOther);  // Cf
  EXPECT_EQ(ClassOf(0xE000), HfCharClass::kOther);  // Co
  EXPECT_EQ(ClassOf(0x0378), HfCharClass::kNone);   // unassigned is not "other" in HF
}

TEST(HfUnicodeTest, CompatTableGivesHuggingFacesOlderAnswers) {
  EXPECT_EQ(ClassOf(0x2E43), HfCharClass::kNone);            // Po since Unicode 9.0
  EXPECT_EQ(ClassOf(0x2E42), HfCharClass::kPunctuation);     // Ps since 8.0: known to HF
  EXPECT_EQ(ClassOf(0x0898), HfCharClass::kNone);            // Mn since 14.0
  EXPECT_EQ(ClassOf(0x0890), HfCharClass::kNone);            // Cf since 14.0
  EXPECT_EQ(ClassOf(0x166D), HfCharClass::kPunctuation);     // was Po, now So
  EXPECT_EQ(ClassOf(0x1734), HfCharClass::kNonspacingMark);  // was Mn, now Mc
}

TEST(HfUnicodeTest, Predicates) {
  EXPECT_TRUE(IsWhitespace(U' '));
  EXPECT_TRUE(IsWhitespace(0x0B));
  EXPECT_TRUE(IsWhitespace(0x85));
  EXPECT_TRUE(IsWhitespace(0xA0));
  EXPECT_TRUE(IsWhitespace(0x3000));
  EXPECT_TRUE(IsWhitespace(0x2029));
  EXPECT_FALSE(IsWhitespace(0x200B));
  EXPECT_FALSE(IsWhitespace(0x1C));  // Rust: not White_Space (Python's isspace says yes)

  EXPECT_TRUE(IsDroppedByCleanText(0));
  EXPECT_TRUE(IsDroppedByCleanText(0xFFFD));
  EXPECT_TRUE(IsDroppedByCleanText(0x0B));
  EXPECT_TRUE(IsDroppedByCleanText(0x85));
  EXPECT_FALSE(IsDroppedByCleanText(U'\t'));
  EXPECT_FALSE(IsDroppedByCleanText(U'\n'));
  EXPECT_FALSE(IsDroppedByCleanText(U'\r'));

  EXPECT_TRUE(IsPunctuation(U'$'));  // ASCII rule, though Sc
  EXPECT_TRUE(IsPunctuation(U'`'));
  EXPECT_FALSE(IsPunctuation(0x00A2));  // ¢ is Sc outside ASCII

  EXPECT_TRUE(IsChineseChar(0x4E2D));
  EXPECT_TRUE(IsChineseChar(0xF900));
  EXPECT_TRUE(IsChineseChar(0x2B920));
  EXPECT_FALSE(IsChineseChar(0x2B820));  // Google BERT's range, not HF's
  EXPECT_FALSE(IsChineseChar(0x3042));   // hiragana
  EXPECT_FALSE(IsChineseChar(0xAC00));   // hangul
}

TEST(HfUnicodeTest, DecomposeCanonical) {
  char32_t out[4];
  ASSERT_EQ(DecomposeCanonical(0xE9, out), 2);  // é
  EXPECT_EQ(out[0], U'e');
  EXPECT_EQ(out[1], 0x301u);
  ASSERT_EQ(DecomposeCanonical(0xD55C, out), 3);  // 한 -> jamo
  EXPECT_EQ(out[0], 0x1112u);
  ASSERT_EQ(DecomposeCanonical(0x1E69, out), 3);  // ṩ: s, dot below, dot above
  EXPECT_EQ(out[1], 0x323u);
  EXPECT_EQ(out[2], 0x307u);
  ASSERT_EQ(DecomposeCanonical(0xFB01, out), 1);  // ﬁ: compatibility only
  ASSERT_EQ(DecomposeCanonical(0x11938, out), 1);  // HF's NFD predates it
  EXPECT_EQ(out[0], 0x11938u);
}

TEST(HfUnicodeTest, CombiningClass) {
  EXPECT_EQ(CombiningClass(U'a'), 0);
  EXPECT_EQ(CombiningClass(0x301), 230);
  EXPECT_EQ(CombiningClass(0x323), 220);
  EXPECT_EQ(CombiningClass(0x302E), 224);  // a spacing mark with a class
  EXPECT_EQ(CombiningClass(0x0898), 0);    // 230 since Unicode 14; HF's NFD predates it
}

TEST(HfUnicodeTest, Lowercase) {
  char32_t out[2];
  ASSERT_EQ(ToLowercase(U'A', out), 1);
  EXPECT_EQ(out[0], U'a');
  ASSERT_EQ(ToLowercase(0x130, out), 2);
  EXPECT_EQ(out[0], U'i');
  EXPECT_EQ(out[1], 0x307u);
  ASSERT_EQ(ToLowercase(0x3A3, out), 1);  // Σ -> σ, never final ς (no context)
  EXPECT_EQ(out[0], 0x3C3u);
  ASSERT_EQ(ToLowercase(0x1E9E, out), 1);  // ẞ -> ß
  EXPECT_EQ(out[0], 0xDFu);
  ASSERT_EQ(ToLowercase(0x212A, out), 1);  // Kelvin sign -> k
  EXPECT_EQ(out[0], U'k');
}

}  // namespace
}  // namespace nlpflow::hf_unicode
